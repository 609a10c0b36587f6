"""System jobs over HTTP: the running app's scheduler seeds them and leads (one process);
viewers read, operators edit (audited), bad input is a 422 naming the field."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from controlplane.api.app import create_app
from controlplane.domain import Role
from controlplane.settings import SchedulerSettings
from controlplane.settings import Settings
from tests.fixtures.api import TokenMaker

SYSTEM = ["chaos_sweep", "reconcile", "retention", "sweep_tuning"]


def test_jobs_are_listed_with_the_leader_and_their_next_run(
    client: TestClient, auth: TokenMaker
) -> None:
    listing = client.get("/api/v1/jobs", headers=auth(Role.viewer))
    assert listing.status_code == 200, listing.text
    body = listing.json()
    assert [j["name"] for j in body["jobs"]] == SYSTEM
    assert body["leader"]["live"] is True and body["leader"]["token"] >= 1
    by_name = {j["name"]: j for j in body["jobs"]}
    assert by_name["chaos_sweep"]["scope"] == "every_process"
    assert by_name["reconcile"]["scope"] == "leader"
    assert by_name["retention"]["next_run_at"] is not None
    metrics = client.get("/metrics").text
    assert "cplane_scheduler_is_leader 1.0" in metrics


def test_operators_edit_jobs_and_bad_input_names_the_field(
    client: TestClient, auth: TokenMaker
) -> None:
    viewer, op = auth(Role.viewer), auth(Role.operator)
    assert (
        client.patch("/api/v1/jobs/retention", json={"enabled": False}, headers=viewer).status_code
        == 403
    )
    too_short = client.patch("/api/v1/jobs/retention", json={"interval_s": 0.5}, headers=op)
    assert too_short.status_code == 422
    assert too_short.json()["detail"][0]["loc"] == ["body", "interval_s"]
    negative = client.patch("/api/v1/jobs/retention", json={"interval_s": -1}, headers=op)
    assert negative.status_code == 422 and negative.json()["detail"][0]["loc"][-1] == "interval_s"
    unknown_field = client.patch("/api/v1/jobs/retention", json={"cron": "x"}, headers=op)
    assert unknown_field.status_code == 422
    assert (
        client.patch("/api/v1/jobs/nope", json={"enabled": False}, headers=op).status_code == 404
    )

    changed = client.patch(
        "/api/v1/jobs/retention", json={"interval_s": 600, "enabled": False}, headers=op
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["interval_s"], changed.json()["enabled"]) == (600, False)
    assert changed.json()["next_run_at"] is None
    events = client.get(
        "/api/v1/audit", params={"target_type": "job"}, headers=auth(Role.admin)
    ).json()
    assert events[0]["action"] == "job.update" and events[0]["target_id"] == "retention"
    runs = client.get("/api/v1/jobs/retention/runs", headers=viewer)
    assert runs.status_code == 200 and runs.json() == []
    assert client.get("/api/v1/jobs/nope/runs", headers=viewer).status_code == 404


def test_a_process_with_the_scheduler_off_neither_leads_nor_seeds(
    app_settings: Settings, db_engine: Engine, auth: TokenMaker
) -> None:
    settings = app_settings.model_copy(update={"scheduler": SchedulerSettings(enabled=False)})
    app = create_app(settings, db_engine=db_engine)
    with TestClient(app) as client:
        assert app.state.scheduler is None
        body = client.get("/api/v1/jobs", headers=auth(Role.viewer)).json()
        assert body == {"leader": None, "jobs": []}
        assert "cplane_scheduler_is_leader 0.0" in client.get("/metrics").text
