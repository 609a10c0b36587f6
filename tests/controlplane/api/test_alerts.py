"""The Alertmanager webhook on the real app: v4 payloads (the shape of Alertmanager's
``notify/webhook`` Message, as its docs give it) stored deduplicated by fingerprint with their
history, retries changing nothing, bad bodies refused whole; the listing's filters."""

from __future__ import annotations

import copy
import time
from datetime import UTC
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from controlplane.domain import Role
from controlplane.guard import GuardEvent
from tests.fixtures.api import TokenMaker

HOOK = "/api/v1/alerts/alertmanager"
ZERO = "0001-01-01T00:00:00Z"


def _alert(
    fingerprint: str,
    *,
    status: str = "firing",
    engine: str = "llm-a",
    name: str = "EngineHighP99Latency",
    starts: str = "2026-12-01T12:00:00Z",
    ends: str = ZERO,
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": name, "engine": engine, "severity": "critical"},
        "annotations": {"summary": "p99 latency above 500 ms", "runbook_url": "https://x/r"},
        "startsAt": starts,
        "endsAt": ends,
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
        "fingerprint": fingerprint,
    }


def _message(*alerts: dict[str, Any], status: str = "firing") -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}/{severity="critical"}:{alertname="EngineHighP99Latency"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "controlplane",
        "groupLabels": {"alertname": "EngineHighP99Latency"},
        "commonLabels": {"alertname": "EngineHighP99Latency", "severity": "critical"},
        "commonAnnotations": {"summary": "p99 latency above 500 ms"},
        "externalURL": "http://alertmanager:9093",
        "notification_reason": "first notification",
        "routeLabels": {},
        "alerts": list(alerts),
    }


@pytest.fixture
def op(client: TestClient, auth: TokenMaker) -> dict[str, str]:
    headers = auth(Role.operator)
    created = client.post(
        "/api/v1/engines", json={"name": "llm-a", "url": "http://127.0.0.1:9"}, headers=headers
    )
    assert created.status_code == 201, created.text
    return headers


def test_firing_then_resolved_is_one_alert_with_its_history(
    client: TestClient, op: dict[str, str]
) -> None:
    first = client.post(HOOK, json=_message(_alert("c0ffee1234567890")), headers=op)
    assert first.status_code == 200, first.text
    assert first.json() == {"received": 1, "created": 1, "changed": 0, "unchanged": 0, "stale": 0}
    listed = client.get("/api/v1/alerts", headers=op).json()
    assert len(listed) == 1
    alert = listed[0]
    assert (alert["status"], alert["source"], alert["engine"]) == (
        "firing",
        "alertmanager",
        "llm-a",
    )
    assert alert["ends_at"] is None and alert["alertname"] == "EngineHighP99Latency"
    assert alert["group_key"].startswith("{}/")

    resolved = _alert("c0ffee1234567890", status="resolved", ends="2026-12-01T12:10:00Z")
    second = client.post(HOOK, json=_message(resolved, status="resolved"), headers=op)
    assert second.json()["changed"] == 1
    detail = client.get(f"/api/v1/alerts/{alert['id']}", headers=op).json()
    assert detail["status"] == "resolved" and detail["ends_at"].startswith("2026-12-01T12:10")
    assert [e["status"] for e in detail["events"]] == ["firing", "resolved"]
    assert detail["events"][0]["payload"]["receiver"] == "controlplane"
    moves = client.get("/api/v1/audit", params={"target_type": "alert_group"}, headers=op).json()
    resolved_event = next(e for e in moves if e["action"] == "alert.resolved")
    assert resolved_event["detail"]["from"] == "firing"
    assert resolved_event["detail"]["alert_ids"] == [alert["id"]]

    # Fires again later: the same row, a third event.
    again = _alert("c0ffee1234567890", starts="2026-12-01T13:00:00Z")
    assert client.post(HOOK, json=_message(again), headers=op).json()["changed"] == 1
    detail = client.get(f"/api/v1/alerts/{alert['id']}", headers=op).json()
    assert [e["status"] for e in detail["events"]] == ["firing", "resolved", "firing"]
    assert len(client.get("/api/v1/alerts", headers=op).json()) == 1


def test_retried_deliveries_change_nothing(client: TestClient, op: dict[str, str]) -> None:
    body = _message(_alert("aa01"), _alert("aa02", engine="not-registered"))
    assert client.post(HOOK, json=body, headers=op).json()["created"] == 2
    for _ in range(3):
        receipt = client.post(HOOK, json=body, headers=op).json()
        assert receipt == {"received": 2, "created": 0, "changed": 0, "unchanged": 2, "stale": 0}
    alerts = {a["fingerprint"]: a for a in client.get("/api/v1/alerts", headers=op).json()}
    assert alerts["aa02"]["engine_id"] is None  # an unknown engine label links nothing
    detail = client.get(f"/api/v1/alerts/{alerts['aa01']['id']}", headers=op).json()
    assert [e["status"] for e in detail["events"]] == ["firing"]

    # A resolution, then a late retry of the original firing: stale, the alert stays resolved.
    resolved = _alert("aa01", status="resolved", ends="2026-12-01T12:05:00Z")
    assert client.post(HOOK, json=_message(resolved), headers=op).json()["changed"] == 1
    late = client.post(HOOK, json=_message(_alert("aa01")), headers=op).json()
    assert (late["stale"], late["changed"]) == (1, 0)
    assert client.get(f"/api/v1/alerts/{alerts['aa01']['id']}", headers=op).json()["status"] == (
        "resolved"
    )


def test_an_alert_seen_again_with_new_annotations_keeps_the_new_ones(
    client: TestClient, op: dict[str, str]
) -> None:
    client.post(HOOK, json=_message(_alert("feed01")), headers=op)
    again = _alert("feed01")
    again["annotations"] = {"summary": "p99 latency above 800 ms"}
    answer = client.post(HOOK, json=_message(again), headers=op)
    assert answer.status_code == 200, answer.text
    assert answer.json()["unchanged"] == 1
    (alert,) = client.get("/api/v1/alerts", headers=op).json()
    assert alert["annotations"] == {"summary": "p99 latency above 800 ms"}


def test_times_without_a_utc_form_are_422(client: TestClient, op: dict[str, str]) -> None:
    early = _alert("feed02", starts="0001-01-01T00:10:00+12:53")
    answer = client.post(HOOK, json=_message(early), headers=op)
    assert answer.status_code == 422, answer.text
    assert client.get("/api/v1/alerts", headers=op).json() == []


def test_filters(client: TestClient, op: dict[str, str]) -> None:
    client.post(
        HOOK,
        json=_message(
            _alert("b1"),
            _alert("b2", name="EngineDown"),
            _alert("b3", status="resolved", engine="other", ends="2026-12-01T12:01:00Z"),
        ),
        headers=op,
    )

    def fingerprints(**params: str) -> set[str]:
        response = client.get("/api/v1/alerts", params=params, headers=op)
        assert response.status_code == 200, response.text
        return {a["fingerprint"] for a in response.json()}

    assert fingerprints(status="firing") == {"b1", "b2"}
    assert fingerprints(engine="llm-a") == {"b1", "b2"}
    assert fingerprints(alertname="EngineDown") == {"b2"}
    assert fingerprints(source="alertmanager") == {"b1", "b2", "b3"}
    assert fingerprints(source="guard") == set()
    assert client.get("/api/v1/alerts?status=open", headers=op).status_code == 422
    assert client.get("/api/v1/alerts?engine=nope", headers=op).status_code == 404
    assert client.get("/api/v1/alerts/999999", headers=op).status_code == 404


def _without(body: dict[str, Any], *path: str | int) -> dict[str, Any]:
    out = copy.deepcopy(body)
    target: Any = out
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return out


def _with(body: dict[str, Any], value: Any, *path: str | int) -> dict[str, Any]:
    out = copy.deepcopy(body)
    target: Any = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return out


GOOD = _message(_alert("dd01"), _alert("dd02"))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_with(GOOD, "3", "version"), "version"),
        (_without(GOOD, "version"), "version"),
        (_without(GOOD, "groupKey"), "groupKey"),
        (_with(GOOD, [], "alerts"), "alerts"),
        (_with(GOOD, "pending", "alerts", 1, "status"), "alerts.1.status"),
        (_without(GOOD, "alerts", 1, "fingerprint"), "alerts.1.fingerprint"),
        (_with(GOOD, "not hex!", "alerts", 1, "fingerprint"), "alerts.1.fingerprint"),
        (_with(GOOD, "yesterday", "alerts", 1, "startsAt"), "alerts.1.startsAt"),
        (_with(GOOD, "2026-12-01T12:00:00", "alerts", 1, "startsAt"), "alerts.1.startsAt"),
        (_with(GOOD, {"alertname": 3}, "alerts", 1, "labels"), "alerts.1.labels.alertname"),
    ],
)
def test_a_body_that_is_not_v4_is_422_and_stores_nothing(
    client: TestClient, op: dict[str, str], body: dict[str, Any], field: str
) -> None:
    response = client.post(HOOK, json=body, headers=op)
    assert response.status_code == 422, response.text
    locs = [".".join(str(p) for p in e["loc"][1:]) for e in response.json()["detail"]]
    assert field in locs
    assert client.get("/api/v1/alerts", headers=op).json() == []


def test_old_alertmanagers_without_newer_fields_are_accepted(
    client: TestClient, op: dict[str, str]
) -> None:
    body = _without(_without(GOOD, "notification_reason"), "routeLabels")
    body["somethingNew"] = {"x": 1}
    assert client.post(HOOK, json=body, headers=op).json()["created"] == 2


def test_the_webhook_needs_an_operator(client: TestClient, auth: TokenMaker) -> None:
    assert client.post(HOOK, json=GOOD).status_code == 401
    assert client.post(HOOK, json=GOOD, headers=auth(Role.viewer)).status_code == 403
    assert client.get("/api/v1/alerts", headers=auth(Role.viewer)).status_code == 200


def test_new_alerts_are_audited_once_per_delivery(client: TestClient, op: dict[str, str]) -> None:
    client.post(HOOK, json=GOOD, headers=op)
    client.post(HOOK, json=GOOD, headers=op)  # a retry: nothing new, no audit event
    events = client.get("/api/v1/audit", params={"target_type": "alert_group"}, headers=op).json()
    assert [e["action"] for e in events] == ["alerts.receive"]
    assert events[0]["detail"]["created"] == 2


def test_the_running_app_turns_guard_events_into_alerts_and_runs_the_detectors(
    client: TestClient, op: dict[str, str]
) -> None:
    app: Any = client.app
    app.state.guard.events.emit(
        GuardEvent("rollout.failed", "llm-a", 1, "restore of the last known good failed")
    )
    listed = client.get("/api/v1/alerts", params={"source": "guard"}, headers=op).json()
    assert [(a["alertname"], a["engine"], a["status"]) for a in listed] == [
        ("RolloutFailed", "llm-a", "firing")
    ]
    assert listed[0]["labels"]["severity"] == "critical"
    scheduler = app.state.scheduler
    deadline = time.monotonic() + 30
    while "detectors" not in {j.id for j in scheduler.scheduled()}:  # loaded on a refresh
        assert time.monotonic() < deadline, "the detectors job was never scheduled"
        time.sleep(0.05)
    outcome = scheduler.fire("detectors", datetime.now(UTC))
    assert outcome.state == "idle"
    assert outcome.detail["changed"] == {}  # an engine with no samples is not judged
