"""Rollouts and SLOs over HTTP, against a real engine, on both store backends."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from controlplane.domain import Role
from tests.fixtures.api import TokenMaker
from tests.fixtures.engines import RunningEngine
from tests.fixtures.engines import start_engine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[RunningEngine]:
    e = start_engine(tmp_path, "--batch-size", "8")
    yield e
    e.stop()


def _register(client: TestClient, op: dict[str, str], engine: RunningEngine) -> None:
    body = {"name": "ref", "url": engine.url, "admin_token": engine.admin_token}
    assert client.post("/api/v1/engines", json=body, headers=op).status_code == 201


def _engine_config(engine: RunningEngine) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {engine.admin_token}"}
    body: dict[str, Any] = httpx.get(f"{engine.url}/admin/config", headers=headers).json()
    return body


def test_slo_crud_and_bad_specs(
    client: TestClient, auth: TokenMaker, engine: RunningEngine
) -> None:
    op = auth(Role.operator)
    _register(client, op, engine)
    put = client.put("/api/v1/engines/ref/slos", json={"spec": "p99_ms<=250"}, headers=op)
    assert put.status_code == 200 and put.json()["spec"] == "p99_ms<=250"
    bad = client.put("/api/v1/engines/ref/slos", json={"spec": "p99<=fast"}, headers=op)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "slo"]
    assert [s["name"] for s in client.get("/api/v1/engines/ref/slos", headers=op).json()] == [
        "p99"
    ]
    assert client.delete("/api/v1/engines/ref/slos/p99", headers=op).status_code == 204


def test_bad_changes_are_422_and_touch_nothing(
    client: TestClient, auth: TokenMaker, engine: RunningEngine
) -> None:
    op = auth(Role.operator)
    _register(client, op, engine)
    url = "/api/v1/engines/ref/rollouts"
    no_slo = client.post(url, json={"changes": {"max_batch_size": 4}}, headers=op)
    assert no_slo.status_code == 422 and "no SLO" in no_slo.text
    client.put("/api/v1/engines/ref/slos", json={"spec": "p99_s<=10"}, headers=op)
    for changes, field in (
        ({"max_batch_size": 0}, "max_batch_size"),
        ({"streams": 1000}, "streams"),
        ({"precision": "fp4"}, "precision"),
        ({"turbo": True}, "turbo"),
    ):
        response = client.post(url, json={"changes": changes}, headers=op)
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["body", field]
    empty = client.post(url, json={"changes": {}}, headers=op)
    assert empty.status_code == 422
    assert client.get("/api/v1/rollouts", headers=op).json() == []
    assert _engine_config(engine)["max_batch_size"] == 8


def test_viewer_may_not_apply(client: TestClient, auth: TokenMaker, engine: RunningEngine) -> None:
    _register(client, auth(Role.operator), engine)
    response = client.post(
        "/api/v1/engines/ref/rollouts",
        json={"changes": {"max_batch_size": 4}},
        headers=auth(Role.viewer),
    )
    assert response.status_code == 403


def test_apply_dry_run_then_guarded_apply_then_conflict_then_rollback(
    client: TestClient, auth: TokenMaker, engine: RunningEngine
) -> None:
    op = auth(Role.operator)
    _register(client, op, engine)
    client.put("/api/v1/engines/ref/slos", json={"spec": "p99_s<=10"}, headers=op)
    url = "/api/v1/engines/ref/rollouts"

    plan = client.post(url, json={"changes": {"max_batch_size": 4}, "dry_run": True}, headers=op)
    assert plan.status_code == 200
    assert plan.json()["to_config"]["max_batch_size"] == 4 and plan.json()["rollout_id"] is None
    assert client.get("/api/v1/rollouts", headers=op).json() == []

    started = client.post(url, json={"changes": {"max_batch_size": 4}, "bake_s": 600}, headers=op)
    assert started.status_code == 202, started.text
    rollout_id = started.json()["rollout_id"]
    second = client.post(url, json={"changes": {"max_batch_size": 2}}, headers=op)
    assert second.status_code == 409

    deadline = time.monotonic() + 30
    while client.get(f"/api/v1/rollouts/{rollout_id}", headers=op).json()["state"] != "baking":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert _engine_config(engine)["max_batch_size"] == 4
    stop = client.post(f"/api/v1/rollouts/{rollout_id}/rollback", headers=op)
    assert stop.status_code == 202
    while (body := client.get(f"/api/v1/rollouts/{rollout_id}", headers=op).json())[
        "state"
    ] == "baking":
        assert time.monotonic() < deadline + 30
        time.sleep(0.1)
    assert body["state"] == "rolled_back"
    assert body["evidence"]["verdict"]["outcome"] == "operator"
    exported = client.get("/metrics").text
    assert 'cplane_rollouts_total{engine="ref",outcome="rolled_back"} 1.0' in exported
    assert _engine_config(engine)["max_batch_size"] == 8
    assert client.get("/api/v1/rollouts/999999", headers=op).status_code == 404
