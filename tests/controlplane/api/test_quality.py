"""The quality routes on a real engine: operators record, viewers read and check; bad input
is 422 naming the field and stores nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from controlplane.domain import Role
from tests.fixtures.api import TokenMaker
from tests.fixtures.db import SQLITE_ONLY
from tests.fixtures.engines import RunningEngine

pytestmark = SQLITE_ONLY
BASE = "/api/v1/engines/ref/quality"
PROMPTS = "".join(f'{{"id": "q{i}", "prompt": "probe {i}", "max_tokens": 6}}\n' for i in range(3))


@pytest.fixture
def op(client: TestClient, auth: TokenMaker, reference_engine: RunningEngine) -> dict[str, str]:
    headers = auth(Role.operator)
    body = {
        "name": "ref",
        "url": reference_engine.url,
        "admin_token": reference_engine.admin_token,
    }
    assert client.post("/api/v1/engines", json=body, headers=headers).status_code == 201
    return headers


def _fields(response: Any) -> list[str]:
    return [".".join(str(p) for p in err["loc"][1:]) for err in response.json()["detail"]]


def _actions(client: TestClient, headers: dict[str, str]) -> list[str]:
    events = client.get("/api/v1/audit", params={"target_type": "engine"}, headers=headers)
    return sorted(e["action"] for e in events.json() if e["action"].startswith(("quality", "slo")))


def test_record_read_check_by_role(
    client: TestClient, op: dict[str, str], auth: TokenMaker
) -> None:
    viewer = auth(Role.viewer)
    assert client.put(f"{BASE}/reference", json={}, headers=viewer).status_code == 403
    recorded = client.put(f"{BASE}/reference", json={"prompts": PROMPTS}, headers=op)
    assert recorded.status_code == 200, recorded.text
    assert recorded.json()["prompts"] == 3 and recorded.json()["top_k"] == 5
    summary = client.get(f"{BASE}/reference", headers=viewer).json()
    assert summary["config"]["precision"] == recorded.json()["config"]["precision"]
    checked = client.post(f"{BASE}/check", json={}, headers=viewer)
    assert checked.status_code == 200, checked.text
    body = checked.json()
    assert (body["exact"], body["agreement"], body["diverged"]) == (1.0, 1.0, 0)
    assert "spec" not in body
    spec = client.put("/api/v1/engines/ref/slos", json={"spec": "quality_kl<=0.02"}, headers=op)
    assert spec.status_code == 200 and spec.json()["spec"] == "quality_kl<=0.02"
    body = client.post(f"{BASE}/check", json={}, headers=viewer).json()
    assert (body["spec"], body["passed"]) == ("quality_kl<=0.02", True)
    # The latency SLO readers never see the quality spec; the SLO list does.
    listed = client.get("/api/v1/engines/ref/slos", headers=viewer).json()
    assert [s["spec"] for s in listed] == ["quality_kl<=0.02"]
    assert _actions(client, op) == ["quality.record", "slo.set"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/reference", {"prompts": "not json"}, "prompts"),
        ("/reference", {"prompts": "\n"}, "prompts"),
        ("/reference", {"prompts": PROMPTS, "top_k": 0}, "top_k"),
        ("/reference", {"prompts": PROMPTS, "config": {"precision": "fp64"}}, "precision"),
        ("/reference", {"prompts": PROMPTS, "config": {"warp": 9}}, "warp"),
        ("/reference", {"prompts": PROMPTS, "extra": 1}, "extra"),
        ("/check", {}, "reference"),
    ],
)
def test_bad_input_is_422_naming_the_field_and_stores_nothing(
    client: TestClient, op: dict[str, str], path: str, body: dict[str, Any], field: str
) -> None:
    response = client.request(
        "PUT" if path == "/reference" else "POST", f"{BASE}{path}", json=body, headers=op
    )
    assert response.status_code == 422, response.text
    assert any(f.endswith(field) for f in _fields(response)), response.json()
    assert client.get(f"{BASE}/reference", headers=op).status_code == 422
    assert _actions(client, op) == []


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("quality>=0.98", "no recorded reference answers"),
        ("quality_bleu>=0.5", "unknown quality measure"),
        ("quality_kl>=0.5", "'<='"),
    ],
)
def test_a_quality_spec_that_cannot_be_judged_is_refused(
    client: TestClient, op: dict[str, str], spec: str, reason: str
) -> None:
    response = client.put("/api/v1/engines/ref/slos", json={"spec": spec}, headers=op)
    assert response.status_code == 422 and reason in response.text
    assert client.get("/api/v1/engines/ref/slos", headers=op).json() == []
