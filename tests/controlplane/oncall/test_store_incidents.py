"""Alerts become incidents in the transaction that stores them, and the outbox follows the
escalation: grouping by key, the first page written with the incident, later steps when due,
ack cancelling delayed pages, silences recording pages as suppressed, auto-resolve with
follow-up messages, reopen on re-fire."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.domain.alerts import AlertSource
from controlplane.domain.incidents import IncidentState
from controlplane.schemas.oncall import SilenceCreate
from controlplane.store import alerts
from controlplane.store import incidents
from controlplane.store import oncall
from controlplane.store.models import IncidentRow
from controlplane.store.models import NotificationRow
from tests.controlplane.oncall.builders import deliver
from tests.controlplane.oncall.builders import person
from tests.controlplane.oncall.builders import rule
from tests.controlplane.oncall.builders import setup_paging
from tests.controlplane.oncall.builders import webhook_alert

NOW = datetime(2026, 12, 1, 12, 0, 5, tzinfo=UTC)


@pytest.fixture
def paging(session: Session) -> Session:
    with session.begin():
        person(session, "alice", pagerduty=True)
        person(session, "bob")
        setup_paging(session)
    return session


def _outbox(session: Session) -> list[tuple[str, str, str, int | None]]:
    with session.begin():
        rows = session.execute(
            select(
                NotificationRow.channel,
                NotificationRow.action,
                NotificationRow.state,
                NotificationRow.user_id,
            ).order_by(NotificationRow.id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_alerts_group_into_one_incident_whose_first_page_commits_with_it(
    paging: Session,
) -> None:
    session = paging
    deliver(
        session, webhook_alert("a1", instance="n1"), webhook_alert("a2", instance="n2"), now=NOW
    )
    deliver(session, webhook_alert("a3", instance="n3"), now=NOW)
    deliver(session, webhook_alert("b1", engine="llm-b"), now=NOW)
    with session.begin():
        listed = incidents.list_incidents(session)
    assert [(i.engine, i.alerts_total, i.state) for i in listed] == [
        (None, 1, IncidentState.triggered),
        (None, 3, IncidentState.triggered),
    ]
    assert listed[1].group_labels == {"alertname": "EngineHighP99Latency", "engine": "llm-a"}
    # alice (on call) has no rules: every contact method at once; two incidents.
    assert sorted(o[:3] for o in _outbox(session)) == sorted(
        [("email", "trigger", "pending"), ("pagerduty", "trigger", "pending")] * 2
    )


def test_escalation_goes_to_the_next_step_when_due_and_ack_stops_it(paging: Session) -> None:
    session = paging
    deliver(session, webhook_alert("a1"), now=NOW)
    with session.begin():
        assert incidents.escalate_due(session, now=NOW + timedelta(seconds=299)) == 0
        assert incidents.escalate_due(session, now=NOW + timedelta(seconds=300)) == 1
    with session.begin():
        bob = incidents.user_id(session, "bob")
    assert [o for o in _outbox(session) if o[3] == bob] == [("email", "trigger", "pending", bob)]
    with session.begin():
        (incident,) = incidents.list_incidents(session)
        assert incident.next_escalation_at is None  # two steps, no repeat: done
        acked = incidents.acknowledge(
            session, incident.id, actor="user:alice", now=NOW + timedelta(seconds=301)
        )
    assert acked.state is IncidentState.acknowledged and acked.acknowledged_by == "user:alice"
    assert {o[2] for o in _outbox(session)} == {"cancelled"}  # nothing was sent yet


def test_delayed_rule_is_cancelled_by_ack(session: Session) -> None:
    with session.begin():
        person(session, "alice", pagerduty=True)
        person(session, "bob")
        rule(session, "alice", "pd", 0)
        rule(session, "alice", "mail", 300)
        setup_paging(session)
    deliver(session, webhook_alert("a1"), now=NOW)
    with session.begin():
        due = session.execute(
            select(NotificationRow.channel, NotificationRow.retry_at).order_by(NotificationRow.id)
        ).all()
    assert sorted((ch, at - NOW) for ch, at in due) == [
        ("email", timedelta(seconds=300)),
        ("pagerduty", timedelta(0)),
    ]


def test_silence_records_pages_as_suppressed(paging: Session) -> None:
    session = paging
    with session.begin():
        oncall.create_silence(
            session,
            SilenceCreate(
                matchers=["engine=llm-a"],
                starts_at=NOW - timedelta(minutes=1),
                ends_at=NOW + timedelta(hours=1),
                comment="maintenance",
            ),
            actor="t",
        )
    deliver(session, webhook_alert("a1"), now=NOW)
    assert {o[2] for o in _outbox(session)} == {"suppressed"}
    with session.begin():
        (incident,) = incidents.list_incidents(session)
        detail = incidents.get_incident(session, incident.id)
    assert "suppressed" in [e.kind for e in detail.timeline]


def test_all_alerts_resolving_resolves_and_tells_the_channels_then_refire_reopens(
    paging: Session,
) -> None:
    session = paging
    deliver(session, webhook_alert("a1"), webhook_alert("a2", instance="x"), now=NOW)
    with session.begin():
        session.execute(
            NotificationRow.__table__.update().values(state="sent")  # type: ignore[attr-defined]
        )
    deliver(session, webhook_alert("a1", status="resolved", ends="2026-12-01T12:01:00Z"), now=NOW)
    with session.begin():
        (incident,) = incidents.list_incidents(session)
    assert incident.state is IncidentState.triggered and incident.alerts_firing == 1
    later = NOW + timedelta(minutes=2)
    deliver(
        session,
        webhook_alert("a2", instance="x", status="resolved", ends="2026-12-01T12:02:00Z"),
        now=later,
    )
    with session.begin():
        (incident,) = incidents.list_incidents(session)
    assert incident.state is IncidentState.resolved
    assert sorted(o[:3] for o in _outbox(session) if o[1] == "resolve") == [
        ("email", "resolve", "pending"),
        ("pagerduty", "resolve", "pending"),
    ]
    deliver(
        session,
        webhook_alert("a1", starts="2026-12-01T12:10:00Z"),
        now=later + timedelta(minutes=8),
    )
    with session.begin():
        (again,) = incidents.list_incidents(session)
        opened = session.scalar(select(func.count()).select_from(IncidentRow))
    assert again.id == incident.id and again.state is IncidentState.triggered and opened == 1


def test_guard_and_detector_alerts_open_incidents_too(paging: Session) -> None:
    session = paging
    with session.begin():
        alerts.raise_alert(
            session,
            alerts.RaisedAlert(
                fingerprint="guard:1",
                alertname="RolloutRolledBack",
                source=AlertSource.guard,
                engine_id=None,
                labels={"alertname": "RolloutRolledBack", "engine": "llm-a"},
                annotations={"summary": "rolled back"},
            ),
            actor="guard",
            now=NOW,
        )
    with session.begin():
        (incident,) = incidents.list_incidents(session)
        row = alerts.get_by_fingerprint(session, "guard:1")
        assert row is not None
        alerts.resolve_alert(session, row, actor="guard", now=NOW, reason="ok")
    with session.begin():
        assert incidents.list_incidents(session)[0].state is IncidentState.resolved
    assert incident.title == "RolloutRolledBack on llm-a: rolled back"


def test_snooze_quiets_then_triggers_again_from_the_first_step(paging: Session) -> None:
    session = paging
    deliver(session, webhook_alert("5e"), now=NOW)
    with session.begin():
        (incident,) = incidents.list_incidents(session)
        snoozed = incidents.snooze(session, incident.id, minutes=30, actor="user:alice", now=NOW)
    assert snoozed.state is IncidentState.snoozed and {o[2] for o in _outbox(session)} == {
        "cancelled"
    }
    with session.begin():
        assert incidents.escalate_due(session, now=NOW + timedelta(minutes=29)) == 0
        assert incidents.escalate_due(session, now=NOW + timedelta(minutes=30)) == 2
        (again,) = incidents.list_incidents(session)
    assert again.state is IncidentState.triggered and again.escalation_step == 1
    assert sorted(o[2] for o in _outbox(session)) == ["cancelled"] * 2 + ["pending"] * 2
