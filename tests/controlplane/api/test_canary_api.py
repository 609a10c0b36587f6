"""A canary plan over HTTP: a bad one, or one for an engine without replicas, is a 422
naming ``canary``, and no rollout is recorded."""

from __future__ import annotations

from fastapi.testclient import TestClient

from controlplane.domain import Role
from tests.fixtures.api import TokenMaker
from tests.fixtures.engines import RunningEngine


def test_bad_canary_plans_are_422(
    client: TestClient, auth: TokenMaker, reference_engine: RunningEngine
) -> None:
    op = auth(Role.operator)
    body = {
        "name": "ref",
        "url": reference_engine.url,
        "admin_token": reference_engine.admin_token,
    }
    assert client.post("/api/v1/engines", json=body, headers=op).status_code == 201
    client.put("/api/v1/engines/ref/slos", json={"spec": "p99_s<=10"}, headers=op)
    url = "/api/v1/engines/ref/rollouts"
    for plan, reason in [
        ("50%:1m,10%:1m", "shares must rise"),
        ("1%:half-an-hour", "is not <percent>%:<duration>"),
        ("1%:30m", "no replicas behind a proxy"),
    ]:
        response = client.post(
            url, json={"changes": {"max_batch_size": 2}, "canary": plan}, headers=op
        )
        assert response.status_code == 422, response.text
        detail = response.json()["detail"][0]
        assert detail["loc"] == ["body", "canary"] and reason in detail["msg"]
    assert client.get("/api/v1/rollouts", headers=op).json() == []
