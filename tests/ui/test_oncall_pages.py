"""Incidents and on-call in the UI over HTTP: open incidents listed first with who was paged,
an incident acknowledged, snoozed, annotated and resolved by an operator through the API's
own functions (audited as the person), a viewer given no button and refused, schedules' week
with overrides, escalation policies, and a rollout's quality-probe evidence."""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy import select

from controlplane.domain import Role
from controlplane.domain.alerts import AlertSource
from controlplane.domain.quality import PromptQuality
from controlplane.domain.quality import QualityResult
from controlplane.domain.quality import parse_quality
from controlplane.guard.quality import verdict_json
from controlplane.schemas.oncall import OverrideCreate
from controlplane.store import alerts
from controlplane.store import oncall
from controlplane.store import rollouts
from controlplane.store.database import make_session_factory
from controlplane.store.database import unit_of_work
from controlplane.store.models import AuditEventRow
from controlplane.store.models import EngineRow
from controlplane.store.models import IncidentRow
from tests.controlplane.oncall.builders import person
from tests.controlplane.oncall.builders import setup_paging
from tests.fixtures.db import SQLITE_ONLY
from tests.ui.conftest import AccountMaker
from tests.ui.conftest import sign_in

pytestmark = SQLITE_ONLY
XSS = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _paging_and_incidents(db_engine: Engine) -> tuple[int, int]:
    """alice on call (paged by email), two alerts firing through the store's own raise:
    two incidents, the second one newer. Returns their ids, oldest first."""
    now = datetime.now(UTC)
    with unit_of_work(make_session_factory(db_engine)) as s:
        person(s, "alice")
        person(s, "bob")
        setup_paging(s, primary="alice", secondary="bob")
        s.add(EngineRow(name="llm-a", kind="reference", url="http://127.0.0.1:9", labels={}))
        s.flush()
        engine_id = s.scalar(select(EngineRow.id).where(EngineRow.name == "llm-a"))
        for n, name in enumerate(("EngineHighP99Latency", "EngineDown")):
            alerts.raise_alert(
                s,
                alerts.RaisedAlert(
                    fingerprint=f"fp-{n}",
                    alertname=name,
                    source=AlertSource.detector,
                    engine_id=engine_id,
                    labels={"alertname": name, "engine": "llm-a", "severity": "critical"},
                    annotations={"summary": f"{name} {XSS}"},
                ),
                actor="t",
                now=now + timedelta(seconds=n),
            )
        ids = sorted(s.scalars(select(IncidentRow.id)))
    assert len(ids) == 2
    return ids[0], ids[1]


def _state(db_engine: Engine, incident_id: int) -> str:
    with unit_of_work(make_session_factory(db_engine)) as s:
        row = s.get(IncidentRow, incident_id)
        assert row is not None
        return row.state


def test_an_operator_acks_snoozes_notes_and_resolves_an_incident(
    ui_app_client: TestClient, account: AccountMaker, db_engine: Engine
) -> None:
    first, second = _paging_and_incidents(db_engine)
    op = account(Role.operator)
    csrf = sign_in(ui_app_client, op)
    listing = ui_app_client.get("/ui/alerts").text
    open_table = listing.split('id="open-incidents"')[1].split("</table>")[0]
    assert f'href="/ui/incidents/{first}"' in open_table
    assert "llm-a" in open_table and "critical" in open_table and "alice" in open_table
    # Incidents come before the alerts they group.
    assert listing.index('id="open-incidents"') < listing.index("Firing alerts")
    assert ui_app_client.get("/ui/incidents").headers["location"] == "/ui/alerts"
    # The tables refresh themselves: the fragment they poll carries the same rows.
    assert 'hx-get="/ui/alerts/incidents"' in listing
    live = ui_app_client.get("/ui/alerts/incidents", headers={"HX-Request": "true"})
    assert live.status_code == 200 and live.text.startswith('<div id="incidents-live"')
    assert f'href="/ui/incidents/{second}"' in live.text and "<html" not in live.text

    detail = ui_app_client.get(f"/ui/incidents/{first}").text
    assert f'action="/ui/incidents/{first}/ack"' in detail
    assert XSS not in detail and ESCAPED in detail
    assert not re.search(r"<script(?![^>]*\bsrc=)|\son[a-z]+=", detail)
    assert "escalated" in detail and "alice" in detail.split('id="incident-paged"')[1][:80]

    acked = ui_app_client.post(f"/ui/incidents/{first}/ack", data={"csrf": csrf})
    assert acked.status_code == 303 and acked.headers["location"] == f"/ui/incidents/{first}"
    assert _state(db_engine, first) == "acknowledged"
    after = ui_app_client.get(f"/ui/incidents/{first}").text
    assert f"/ui/incidents/{first}/ack" not in after and f"by user:{op.name}" in after
    with unit_of_work(make_session_factory(db_engine)) as s:
        actions = set(
            s.scalars(
                select(AuditEventRow.action).where(
                    AuditEventRow.target_type == "incident",
                    AuditEventRow.target_id == str(first),
                    AuditEventRow.actor == f"user:{op.name}",
                )
            )
        )
    assert "incident.acknowledged" in actions, actions
    # Acknowledged open incidents sort after the triggered one that still pages.
    listing = ui_app_client.get("/ui/alerts/incidents").text
    assert listing.index(f"/ui/incidents/{second}") < listing.index(f"/ui/incidents/{first}")

    bad = ui_app_client.post(f"/ui/incidents/{first}/snooze", data={"csrf": csrf, "minutes": "0"})
    assert bad.status_code == 422 and 'id="err-minutes"' in bad.text
    assert 'value="0"' in bad.text and _state(db_engine, first) == "acknowledged"
    snoozed = ui_app_client.post(
        f"/ui/incidents/{first}/snooze", data={"csrf": csrf, "minutes": "30"}
    )
    assert snoozed.status_code == 303 and _state(db_engine, first) == "snoozed"

    empty = ui_app_client.post(f"/ui/incidents/{first}/notes", data={"csrf": csrf, "text": " "})
    assert empty.status_code == 422 and 'id="err-text"' in empty.text
    noted = ui_app_client.post(
        f"/ui/incidents/{first}/notes", data={"csrf": csrf, "text": f"rolled back {XSS}"}
    )
    assert noted.status_code == 303
    timeline = ui_app_client.get(f"/ui/incidents/{first}").text.split('id="incident-timeline"')[1]
    assert f"rolled back {ESCAPED}" in timeline and XSS not in timeline

    resolved = ui_app_client.post(f"/ui/incidents/{first}/resolve", data={"csrf": csrf})
    assert resolved.status_code == 303 and _state(db_engine, first) == "resolved"
    final = ui_app_client.get(f"/ui/incidents/{first}").text
    assert 'id="incident-actions"' not in final
    # The API's refusals, shown on the page: nothing changes.
    late = ui_app_client.post(f"/ui/incidents/{first}/ack", data={"csrf": csrf})
    assert late.status_code == 409 and 'role="alert"' in late.text
    late = ui_app_client.post(f"/ui/incidents/{first}/snooze", data={"csrf": csrf, "minutes": "5"})
    assert late.status_code == 422 and "a resolved incident cannot be snoozed" in late.text
    assert _state(db_engine, first) == "resolved"
    listing = ui_app_client.get("/ui/alerts").text
    resolved_table = listing.split('id="resolved-incidents"')[1].split("</table>")[0]
    assert f"/ui/incidents/{first}" in resolved_table
    assert ui_app_client.get("/ui/incidents/999999").status_code == 404


def test_a_viewer_sees_no_incident_control_and_is_refused(
    ui_app_client: TestClient, account: AccountMaker, db_engine: Engine
) -> None:
    first, _ = _paging_and_incidents(db_engine)
    viewer = account(Role.viewer)
    csrf = sign_in(ui_app_client, viewer)
    page = ui_app_client.get(f"/ui/incidents/{first}").text
    assert '<form method="post" action="/ui/incidents' not in page
    assert 'id="incident-actions"' not in page and 'id="note-form"' not in page
    for action, data in (
        ("ack", {}),
        ("resolve", {}),
        ("snooze", {"minutes": "30"}),
        ("notes", {"text": "hi"}),
    ):
        response = ui_app_client.post(
            f"/ui/incidents/{first}/{action}", data={**data, "csrf": csrf}
        )
        assert response.status_code == 403, (action, response.text)
    assert _state(db_engine, first) == "triggered"

    op = account(Role.operator)
    sign_in(ui_app_client, op)
    no_token = ui_app_client.post(f"/ui/incidents/{first}/ack", data={})
    assert no_token.status_code == 403 and _state(db_engine, first) == "triggered"


def test_on_call_now_a_week_with_its_override_and_the_policies(
    ui_app_client: TestClient, account: AccountMaker, db_engine: Engine
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    with unit_of_work(make_session_factory(db_engine)) as s:
        person(s, "alice")
        person(s, "bob")
        setup_paging(s, primary="alice", secondary="bob")
        # bob takes the next two hours, starting within this week's view.
        oncall.add_override(
            s,
            "primary",
            OverrideCreate(
                user="bob", starts_at=now - timedelta(minutes=1), ends_at=now + timedelta(hours=2)
            ),
            actor="t",
        )
    sign_in(ui_app_client, account(Role.viewer))
    page = ui_app_client.get("/ui/oncall")
    assert page.status_code == 200
    now_table = page.text.split('id="on-call-now"')[1].split("</table>")[0]
    assert 'href="/ui/oncall/schedules/primary"' in now_table
    assert re.search(r"<td>bob</td><td>override</td>", now_table), now_table
    policies = page.text.split('id="policies"')[1].split("</table>")[0]
    assert "default" in policies and "schedule" in policies and "bob" in policies
    assert "wait 300 s" in policies

    week = ui_app_client.get("/ui/oncall/schedules/primary")
    assert week.status_code == 200
    assert not re.search(r"<script(?![^>]*\bsrc=)|\son[a-z]+=", week.text)
    assert week.text.split('id="schedule-now"')[1].startswith(">bob<")
    table = week.text.split('id="week"')[1].split("</table>")[0]
    assert table.count("<th rowspan=") + table.count('<th scope="row">') == 7
    assert '<td class="shift-override">bob</td>' in table and "alice" in table
    overrides = week.text.split('id="overrides"')[1].split("</table>")[0]
    assert "bob" in overrides
    # Another week: alice's rotation alone, no override.
    later = ui_app_client.get("/ui/oncall/schedules/primary?week=2031-03-05")
    assert later.status_code == 200 and "Week of 2031-03-03" in later.text
    assert "shift-override" not in later.text.split('id="week"')[1].split("</table>")[0]
    bad = ui_app_client.get("/ui/oncall/schedules/primary?week=9999-12-31")
    assert bad.status_code == 422 and "week" in bad.text
    assert ui_app_client.get("/ui/oncall/schedules/nope").status_code == 404


def test_a_rollout_shows_its_quality_probe_evidence(
    ui_app_client: TestClient, account: AccountMaker, db_engine: Engine
) -> None:
    spec = parse_quality("quality>=0.98")
    result = QualityResult(
        prompts=(
            PromptQuality("p-ok", reference_tokens=8, matched=8, diverged_at=None),
            PromptQuality(
                "p-bad", reference_tokens=8, matched=3, diverged_at=3, expected=(11, 12), got=(7,)
            ),
        ),
        duration_s=1.5,
    )
    quality = verdict_json(spec, result)
    with unit_of_work(make_session_factory(db_engine)) as s:
        s.add(EngineRow(name="e1", kind="reference", url="http://127.0.0.1:9", labels={}))
        s.flush()
        engine_id = s.scalar(select(EngineRow.id).where(EngineRow.name == "e1"))
        assert engine_id is not None
        row = rollouts.start_rollout(
            s,
            engine_id=engine_id,
            from_config_id=None,
            to_config_id=None,
            reason="manual",
            actor="t",
            evidence={"verdict": {"outcome": "quality", "summary": "x", "quality": quality}},
        )
        with_probe = row.id
        s.add(EngineRow(name="e2", kind="reference", url="http://127.0.0.1:9", labels={}))
        s.flush()
        other = s.scalar(select(EngineRow.id).where(EngineRow.name == "e2"))
        assert other is not None
        plain = rollouts.start_rollout(
            s, engine_id=other, from_config_id=None, to_config_id=None, reason="m", actor="t"
        ).id
    sign_in(ui_app_client, account(Role.viewer))
    page = ui_app_client.get(f"/ui/rollouts/{with_probe}").text
    section = page.split('id="quality-evidence"')[1].split("</section>")[0]
    assert "quality&gt;=0.98" in section and "failed" in section
    assert f"<dd>{quality['agreement']}</dd>" in section
    worst = section.split('id="quality-worst"')[1]
    assert "<td>p-bad</td>" in worst and "<code>11 12</code>" in worst and "<td>3</td>" in worst
    assert "p-ok" not in worst
    assert 'id="quality-evidence"' not in ui_app_client.get(f"/ui/rollouts/{plain}").text


def test_an_incident_shows_the_changes_to_its_engine_around_it(
    ui_app_client: TestClient, account: AccountMaker, db_engine: Engine
) -> None:
    """A rollout of the incident's engine just before it broke is listed with a link; one of
    another engine is not."""
    with unit_of_work(make_session_factory(db_engine)) as s:
        s.add(EngineRow(name="other", kind="reference", url="http://127.0.0.1:9", labels={}))
        s.flush()
        other = s.scalar(select(EngineRow.id).where(EngineRow.name == "other"))
        assert other is not None
        elsewhere = rollouts.start_rollout(
            s, engine_id=other, from_config_id=None, to_config_id=None, reason="x", actor="t"
        ).id
    first, _ = _paging_and_incidents(db_engine)
    sign_in(ui_app_client, account(Role.viewer))
    quiet = ui_app_client.get(f"/ui/incidents/{first}").text
    assert "No change to this engine in that window." in quiet
    with unit_of_work(make_session_factory(db_engine)) as s:
        engine_id = s.scalar(select(EngineRow.id).where(EngineRow.name == "llm-a"))
        assert engine_id is not None
        mine = rollouts.start_rollout(
            s,
            engine_id=engine_id,
            from_config_id=None,
            to_config_id=None,
            reason=f"batch 16 {XSS}",
            actor="t",
        ).id
    page = ui_app_client.get(f"/ui/incidents/{first}").text
    context = page.split('id="incident-context"')[1].split("</ul>")[0]
    assert f'href="/ui/rollouts/{mine}"' in context and ESCAPED in context
    assert f'href="/ui/rollouts/{elsewhere}"' not in context
