"""Tuning schedules and the health watch over HTTP against a real engine: the round trip,
roles, audit, a run-now that is skipped with its reason, and every kind of bad input
answered 422 with the field named and nothing created."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from controlplane.domain import Role
from tests.fixtures.api import TokenMaker
from tests.fixtures.engines import RunningEngine

BASE = "/api/v1/schedules"
TUNE = {"load": "rate=40", "trials": 5, "knobs": ["max_batch_size"]}


@pytest.fixture
def op(client: TestClient, auth: TokenMaker, reference_engine: RunningEngine) -> dict[str, str]:
    headers = auth(Role.operator)
    body = {
        "name": "ref",
        "url": reference_engine.url,
        "admin_token": reference_engine.admin_token,
    }
    assert client.post("/api/v1/engines", json=body, headers=headers).status_code == 201
    client.put("/api/v1/engines/ref/slos", json={"spec": "p99_ms<=5000"}, headers=headers)
    return headers


def _fields(response: Any) -> list[str]:
    return [".".join(str(p) for p in err["loc"][1:]) for err in response.json()["detail"]]


def _audit(client: TestClient, headers: dict[str, str]) -> list[str]:
    events = client.get("/api/v1/audit", params={"target_type": "schedule"}, headers=headers)
    return sorted(e["action"] for e in events.json())


def test_round_trip_roles_and_audit(
    client: TestClient, auth: TokenMaker, op: dict[str, str]
) -> None:
    body = {"engine": "ref", "cron": "0 3 * * *", "timezone": "Asia/Shanghai", "spec": TUNE}
    created = client.post(BASE, json=body, headers=op)
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert schedule["name"] == "ref-1" and schedule["spec"]["load"] == "rate=40,shapes=16x8"
    next_fire = datetime.fromisoformat(schedule["next_fire"])
    assert next_fire.utcoffset() == timedelta(hours=8) and next_fire.hour == 3

    viewer = auth(Role.viewer)
    assert [s["name"] for s in client.get(BASE, headers=viewer).json()] == ["ref-1"]
    assert client.get(f"{BASE}/ref-1", headers=viewer).json()["id"] == schedule["id"]
    assert client.post(BASE, json=body, headers=viewer).status_code == 403
    assert client.post(f"{BASE}/ref-1/pause", headers=viewer).status_code == 403

    paused = client.post(f"{BASE}/ref-1/pause", headers=op).json()
    assert paused["paused"] is True and paused["next_fire"] is None
    assert client.post(f"{BASE}/ref-1/resume", headers=op).json()["paused"] is False
    assert client.get(f"{BASE}/ref-1/runs", headers=viewer).json() == []
    assert client.delete(f"{BASE}/ref-1", headers=viewer).status_code == 403
    assert client.delete(f"{BASE}/ref-1", headers=op).status_code == 204
    assert client.get(f"{BASE}/ref-1", headers=op).status_code == 404
    assert _audit(client, op) == [
        "schedule.create", "schedule.delete", "schedule.pause", "schedule.resume"
    ]  # fmt: skip


def test_run_now_outside_the_window_is_skipped_and_says_why(
    client: TestClient, op: dict[str, str]
) -> None:
    later = datetime.now(UTC) + timedelta(hours=3)
    window = f"{later:%H}:00-{later + timedelta(hours=1):%H}:00"
    body = {"engine": "ref", "cron": "0 3 * * *", "spec": TUNE, "skip": {"window": window}}
    schedule_id = client.post(BASE, json=body, headers=op).json()["id"]
    fired = client.post(f"{BASE}/{schedule_id}/run-now", headers=op)
    assert fired.status_code == 202, fired.text
    firing = fired.json()
    assert firing["state"] == "skipped" and firing["reason"] == "outside_window"
    assert "outside the maintenance window" in firing["message"]
    (run,) = client.get(f"{BASE}/{schedule_id}/runs", headers=op).json()
    assert run["state"] == "skipped" and run["reason"] == "outside_window"
    assert run["detail"]["message"] == firing["message"]
    assert "schedule.run_now" in _audit(client, op)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cron": "0 3 * *"}, "cron"),
        ({"cron": "0 25 * * *"}, "cron"),
        ({"cron": "*/5 * * * *"}, "cron"),  # more often than every 15 min
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"engine": "nope"}, "engine"),
        ({"spec": {"load": "rate=-3"}}, "spec.load"),
        ({"spec": {"trials": 0}}, "spec.trials"),
        ({"spec": {"slo": ["p99_ms<<3"]}}, "spec.slo"),
        ({"spec": {"knobs": ["warp_drive"]}}, "spec.knobs"),
        ({"spec": {"colour": "blue"}}, "spec.colour"),
        ({"skip": {"window": "noon"}}, "skip.window"),
        ({"skip": {"min_rps": 5}}, "skip.min_rps"),  # not live load
    ],
)
def test_bad_input_is_422_naming_the_field_and_creates_nothing(
    client: TestClient, op: dict[str, str], change: dict[str, Any], field: str
) -> None:
    body = {"engine": "ref", "cron": "0 3 * * *", "timezone": "UTC", "spec": TUNE, **change}
    response = client.post(BASE, json=body, headers=op)
    assert response.status_code == 422, response.text
    assert field in _fields(response), response.json()
    assert client.get(BASE, headers=op).json() == []
    assert _audit(client, op) == []


def test_health_watch_settings_per_engine(
    client: TestClient, auth: TokenMaker, op: dict[str, str]
) -> None:
    url = "/api/v1/engines/ref/health-watch"
    viewer = auth(Role.viewer)
    shown = client.get(url, headers=viewer).json()
    assert (shown["interval_s"], shown["failures"], shown["window_s"]) == (15.0, 3, 86_400.0)
    assert shown["overrides"] == {} and shown["consecutive_failures"] == 0
    assert client.put(url, json={"failures": 2}, headers=viewer).status_code == 403
    changed = client.put(url, json={"interval_s": 5, "failures": 2}, headers=op).json()
    assert (changed["interval_s"], changed["failures"], changed["timeout_s"]) == (5.0, 2, 3.0)
    assert changed["overrides"] == {"interval_s": 5.0, "failures": 2}
    back = client.put(url, json={"interval_s": None}, headers=op).json()
    assert back["interval_s"] == 15.0 and back["overrides"] == {"failures": 2}
    bad = client.put(url, json={"failures": 0, "interval_s": 0.01}, headers=op)
    assert bad.status_code == 422 and set(_fields(bad)) == {"failures", "interval_s"}
    assert client.put("/api/v1/engines/nope/health-watch", json={}, headers=op).status_code == 404
    events = client.get("/api/v1/audit", params={"target_type": "engine"}, headers=op).json()
    assert [e["action"] for e in events].count("engine.health_watch") == 2
