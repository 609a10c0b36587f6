"""Series the alert rules read from the store and the chaos state, on ``/metrics``."""

from __future__ import annotations

import json
import time

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from controlplane.domain import Role
from controlplane.settings import Settings
from tests.fixtures.api import TokenMaker


def _samples(client: TestClient, family: str) -> dict[tuple[tuple[str, str], ...], float]:
    found = {}
    for fam in text_string_to_metric_families(client.get("/metrics").text):
        if fam.name == family:
            for s in fam.samples:
                found[tuple(sorted(s.labels.items()))] = s.value
    return found


def test_tuning_runs_of_every_engine_and_state_are_present_at_zero(
    client: TestClient, auth: TokenMaker
) -> None:
    body = {"name": "ref", "kind": "reference", "url": "http://127.0.0.1:1"}
    assert (
        client.post("/api/v1/engines", json=body, headers=auth(Role.operator)).status_code == 201
    )
    runs = _samples(client, "cplane_tuning_runs")
    assert runs[(("engine", "ref"), ("state", "failed"))] == 0
    assert {dict(k)["state"] for k in runs} >= {"pending", "running", "done", "failed"}


def test_a_chaos_fault_past_its_deadline_is_overdue(
    client: TestClient, app_settings: Settings
) -> None:
    state_dir = app_settings.chaos_state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "exp-7.json").write_text(json.dumps({"deadline": time.time() - 30}))
    (state_dir / "exp-8.json").write_text(json.dumps({"deadline": time.time() + 600}))
    (state_dir / "exp-9.json").write_text("{not json")
    overdue = _samples(client, "cplane_chaos_fault_overdue_seconds")
    assert set(overdue) == {(("fault", "exp-7"),), (("fault", "exp-8"),)}
    assert 29 < overdue[(("fault", "exp-7"),)] < 120
    assert overdue[(("fault", "exp-8"),)] < 0
