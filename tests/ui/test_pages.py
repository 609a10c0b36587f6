"""The UI's pages over HTTP: what a viewer may not do (no control shown, the post refused),
escaping of everything the store holds, forms validated by the API's own models with the
error beside its field and nothing applied, audit entries like the API's, and the fleet's
one-request statistics agreeing with ``/api/v1/series``."""

from __future__ import annotations

import re
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from controlplane.domain import Role
from controlplane.domain import Sample
from controlplane.domain import parse_slo
from controlplane.store import samples
from controlplane.store import schedules
from controlplane.store import slos
from controlplane.store.database import make_session_factory
from controlplane.store.database import unit_of_work
from controlplane.store.models import EngineRow
from controlplane.ui.fleet_stats import fleet_stats
from tests.fixtures.db import SQLITE_ONLY
from tests.fixtures.engines import RunningEngine
from tests.ui.conftest import Account
from tests.ui.conftest import AccountMaker
from tests.ui.conftest import sign_in

pytestmark = SQLITE_ONLY
XSS = "<script>alert(1)</script>"
RSS = "host_engine_process_resident_memory_bytes"


def _bearer(who: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {who.token}"}


def _add_engine(client: TestClient, who: Account, name: str, url: str, **extra: object) -> int:
    body = {"name": name, "url": url, **extra}
    response = client.post("/api/v1/engines", json=body, headers=_bearer(who))
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def test_a_viewer_sees_no_control_and_a_forged_post_is_refused(
    ui_app_client: TestClient, account: AccountMaker
) -> None:
    op, viewer = account(Role.operator), account(Role.viewer)
    _add_engine(ui_app_client, op, "e1", "http://127.0.0.1:9")
    csrf = sign_in(ui_app_client, viewer)
    engine_page = ui_app_client.get("/ui/engines/e1").text
    for marker in ('id="apply-form"', 'id="slo-form"', 'method="post" action="/ui/engines'):
        assert marker not in engine_page
    assert 'id="tuning-form"' not in ui_app_client.get("/ui/tuning").text
    nav = ui_app_client.get("/ui/fleet").text
    assert 'href="/ui/admin"' not in nav and 'href="/ui/chaos"' not in nav
    forged = [
        ("/ui/engines/e1/slos", {"spec": "p99_ms<=300"}),
        ("/ui/engines/e1/apply", {"knob.max_batch_size": "4"}),
        ("/ui/engines/e1/slos/p99/delete", {}),
        ("/ui/rollouts/1/rollback", {}),
        ("/ui/tuning", {"engine": "e1"}),
        ("/ui/tuning/1/stop", {}),
        ("/ui/chaos", {"target": "pid:1", "fault": "pause", "duration_s": "1"}),
        ("/ui/admin/users", {"name": "mallory", "role": "admin"}),
        (f"/ui/admin/users/{viewer.name}", {"role": "admin"}),
    ]
    for path, data in forged:
        response = ui_app_client.post(path, data={**data, "csrf": csrf})
        assert response.status_code == 403, (path, response.text)
    assert ui_app_client.get("/ui/admin").status_code == 403
    listed = ui_app_client.get("/api/v1/engines/e1/slos", headers=_bearer(op)).json()
    assert listed == []


def test_stored_markup_renders_as_text(
    ui_app_client: TestClient, account: AccountMaker, db_engine: Engine
) -> None:
    op = account(Role.admin)
    _add_engine(
        ui_app_client,
        op,
        "e1",
        "http://127.0.0.1:9",
        labels={"team": XSS},
        description=XSS,
    )
    # The API refuses such a name; a row written some other way must still render as text.
    with unit_of_work(make_session_factory(db_engine)) as s:
        s.add(EngineRow(name=XSS, kind="reference", url="http://127.0.0.1:9", labels={}))
    sign_in(ui_app_client, op)
    fleet = ui_app_client.get("/ui/fleet").text
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert XSS not in fleet and fleet.count(escaped) >= 2
    engine = ui_app_client.get("/ui/engines/e1").text
    assert XSS not in engine and escaped in engine
    bad_id = re.search(r'href="/ui/engines/(\d+)">' + re.escape(escaped), fleet)
    assert bad_id is not None
    assert XSS not in ui_app_client.get(f"/ui/engines/{bad_id.group(1)}").text


def test_bad_forms_show_the_error_by_the_field_and_apply_nothing(
    ui_app_client: TestClient, account: AccountMaker, reference_engine: RunningEngine
) -> None:
    op = account(Role.operator)
    _add_engine(
        ui_app_client, op, "ref", reference_engine.url, admin_token=reference_engine.admin_token
    )
    csrf = sign_in(ui_app_client, op)
    bad_slo = ui_app_client.post(
        "/ui/engines/ref/slos", data={"spec": "p99<=fast", "window_s": "30", "csrf": csrf}
    )
    assert bad_slo.status_code == 422
    assert re.search(r'id="err-spec">cannot parse SLO', bad_slo.text)
    assert 'value="p99&lt;=fast"' in bad_slo.text  # what was typed stays
    window = ui_app_client.post(
        "/ui/engines/ref/slos", data={"spec": "p99_ms<=300", "window_s": "-1", "csrf": csrf}
    )
    assert window.status_code == 422 and 'id="err-window_s"' in window.text
    # No SLO yet: the guard refuses any change, as the API does.
    no_slo = ui_app_client.post(
        "/ui/engines/ref/apply", data={"knob.max_batch_size": "4", "csrf": csrf}
    )
    assert no_slo.status_code == 422 and "no SLO" in no_slo.text
    ui_app_client.post("/ui/engines/ref/slos", data={"spec": "p99_s<=10", "csrf": csrf})
    for field, value in (("max_batch_size", "0"), ("precision", "fp4"), ("streams", "1000")):
        response = ui_app_client.post(
            "/ui/engines/ref/apply", data={f"knob.{field}": value, "csrf": csrf}
        )
        assert response.status_code == 422, response.text
        assert re.search(rf'id="err-{field}">[^<]*{field}', response.text), field
    bake = ui_app_client.post(
        "/ui/engines/ref/apply",
        data={"knob.max_batch_size": "4", "bake_s": "soon", "csrf": csrf},
    )
    assert bake.status_code == 422 and 'id="err-bake_s"' in bake.text
    dry = ui_app_client.post(
        "/ui/engines/ref/apply",
        data={"knob.max_batch_size": "4", "dry_run": "on", "csrf": csrf},
    )
    assert dry.status_code == 200 and "Dry run" in dry.text
    assert ui_app_client.get("/api/v1/rollouts", headers=_bearer(op)).json() == []
    bad_run = ui_app_client.post(
        "/ui/tuning",
        data={"engine": "ref", "load": "rate=fast", "trials": "0", "csrf": csrf},
    )
    assert bad_run.status_code == 422
    assert 'id="err-load"' in bad_run.text and 'id="err-trials"' in bad_run.text
    assert ui_app_client.get("/api/v1/tuning-runs", headers=_bearer(op)).json() == []
    audit = ui_app_client.get(
        "/api/v1/audit", params={"action": "slo.set"}, headers=_bearer(op)
    ).json()
    assert [e["actor"] for e in audit] == [f"user:{op.name}"]


def _traffic(source: str, now: float, *, latency_le: str) -> list[Sample]:
    """Ten minutes of scrapes every 5 s: 10 req/s, every request in the ``latency_le``
    bucket (buckets 0.1, 0.5, 1, +Inf)."""
    out = []
    for i in range(121):
        ts = now - 600 + 5 * i
        count = 50.0 * i
        out.append(Sample(ts, source, "requests_succeeded_total", (), count))
        for le in ("0.1", "0.5", "1", "+Inf"):
            inside = count if float(le) >= float(latency_le) else 0.0
            labels = (("le", le),)
            out.append(Sample(ts, source, "request_latency_seconds_bucket", labels, inside))
    return out


def test_fleet_statistics_match_the_series_api(
    ui_app_client: TestClient, account: AccountMaker, db_engine: Engine
) -> None:
    op = account(Role.operator)
    fast = _add_engine(ui_app_client, op, "fast", "http://127.0.0.1:9", labels={"team": "a"})
    slow = _add_engine(ui_app_client, op, "slow", "http://127.0.0.1:9")
    quiet = _add_engine(ui_app_client, op, "quiet", "http://127.0.0.1:9")
    now = float(int(time.time()))
    factory = make_session_factory(db_engine)
    with unit_of_work(factory) as s:
        samples.insert_samples(s, _traffic("fast", now, latency_le="0.1"))
        samples.insert_samples(s, _traffic("slow", now, latency_le="1"))
        rss = [
            Sample(now - 60 + 15 * i, "host:n1", RSS, (("engine", "fast"),), 2.0**30)
            for i in range(5)
        ]
        samples.insert_samples(s, rss)
        for engine_id in (fast, slow):
            slos.set_slo(s, engine_id=engine_id, slo=parse_slo("p99_ms<=300"), actor="t")
    with factory() as s:
        stats = fleet_stats(s, [fast, slow, quiet], now=now)
    assert stats[fast].slo_status == "met" and stats[slow].slo_status == "breached"
    assert stats[quiet].slo_status == "no SLO" and stats[quiet].health == "no data"
    assert stats[fast].health == "up"
    api = ui_app_client.get(
        "/api/v1/series",
        params={
            "engine": "fast",
            "metric": "requests_succeeded_total",
            "rate": "true",
            "from": now - 1800,
            "to": now,
            "step": 60,
        },
        headers=_bearer(op),
    ).json()
    assert [tuple(p) for p in api["series"][0]["points"]] == stats[fast].qps
    assert all(v == pytest.approx(10.0) for _, v in stats[fast].qps)
    assert all(0.05 < v <= 100.0 for _, v in stats[fast].p99_ms)
    assert all(500.0 < v <= 1000.0 for _, v in stats[slow].p99_ms)

    sign_in(ui_app_client, op)
    body = ui_app_client.get(f"/ui/fleet/stats.json?ids={fast},{slow},{quiet}").json()
    assert set(body) == {str(fast), str(slow), str(quiet)}
    assert body[str(slow)]["slo_status"] == "breached"
    assert "p99_ms<=300" in body[str(slow)]["slo_detail"]
    chart = ui_app_client.get(
        f"/ui/engines/{fast}/series.json",
        params={
            "metric": "requests_succeeded_total",
            "rate": "true",
            "from": now - 1800,
            "to": now,
            "step": 60,
        },
    ).json()
    assert chart["series"] == api["series"]
    page = ui_app_client.get(f"/ui/engines/{fast}").text
    host_url = re.search(r'data-series-url="(/ui/engines/\d+/host-series.json[^"]+)"', page)
    assert host_url is not None and "Resident memory (host:n1)" in page
    memory = ui_app_client.get(host_url.group(1).replace("&amp;", "&")).json()
    assert memory["series"][0]["labels"] == {"engine": "fast"}
    assert {v for _, v in memory["series"][0]["points"]} == {2.0**30}
    assert "host-series" not in ui_app_client.get(f"/ui/engines/{slow}").text
    filtered = ui_app_client.get("/ui/fleet", params={"q": "slo"}).text
    assert ">slow</a>" in filtered and ">fast</a>" not in filtered
    by_label = ui_app_client.get("/ui/fleet", params={"label": "team=a"}).text
    assert ">fast</a>" in by_label and ">slow</a>" not in by_label
    assert ui_app_client.get("/ui/fleet", params={"label": "nokey"}).status_code == 422


def test_assets_are_served_by_the_app_and_pages_stay_light(
    ui_app_client: TestClient, account: AccountMaker
) -> None:
    sign_in(ui_app_client, account(Role.viewer))
    for path, needle in (
        ("/ui/static/vendor/htmx/htmx.min.js", b"htmx"),
        ("/ui/static/vendor/uplot/uPlot.iife.min.js", b"uPlot"),
        ("/ui/static/ui.js", b"X-CSRF-Token"),
        ("/ui/plotly.min.js", b"plotly"),
    ):
        response = ui_app_client.get(path)
        assert response.status_code == 200 and needle in response.content[:200_000], path
    fleet = ui_app_client.get("/ui/fleet").text
    assert "plotly" not in fleet  # Plotly is loaded on the tuning run page only
    assets = re.findall(r'(?:src|href)="(/ui/static/[^"]+)"', fleet)
    weight = len(fleet.encode()) + sum(len(ui_app_client.get(a).content) for a in assets)
    assert weight < 300_000


def test_an_operator_pauses_and_resumes_a_schedule(
    ui_app_client: TestClient, account: AccountMaker, db_engine: Engine
) -> None:
    op, viewer = account(Role.operator), account(Role.viewer)
    engine_id = _add_engine(ui_app_client, op, "e1", "http://127.0.0.1:9")
    with unit_of_work(make_session_factory(db_engine)) as s:
        row = schedules.create_schedule(
            s,
            name="nightly",
            engine_id=engine_id,
            engine_name="e1",
            cron="0 2 * * *",
            timezone="UTC",
            spec={},
            skip={},
            paused=False,
            actor="t",
        )
        schedule_id = row.id
    csrf = sign_in(ui_app_client, viewer)
    assert "/pause" not in ui_app_client.get("/ui/tuning").text
    refused = ui_app_client.post(f"/ui/schedules/{schedule_id}/pause", data={"csrf": csrf})
    assert refused.status_code == 403
    csrf = sign_in(ui_app_client, op)
    assert (
        ui_app_client.post(f"/ui/schedules/{schedule_id}/pause", data={"csrf": csrf}).status_code
        == 303
    )
    listed = ui_app_client.get("/api/v1/schedules/nightly", headers=_bearer(op)).json()
    assert listed["paused"] is True
    assert ">Resume</button>" in ui_app_client.get("/ui/tuning").text
    ui_app_client.post(f"/ui/schedules/{schedule_id}/resume", data={"csrf": csrf})
    assert (
        ui_app_client.get("/api/v1/schedules/nightly", headers=_bearer(op)).json()["paused"]
        is False
    )
