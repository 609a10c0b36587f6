from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from controlplane.domain import Role
from tests.fixtures.api import TokenMaker

BASE = "/api/v1/engines"
GOOD = {"name": "llm-a", "url": "http://127.0.0.1:8000", "admin_token": "engine-secret"}


def _fields(response: Any) -> list[str]:
    return [".".join(str(p) for p in err["loc"][1:]) for err in response.json()["detail"]]


def test_crud_round_trip(client: TestClient, auth: TokenMaker) -> None:
    op = auth(Role.operator)
    created = client.post(BASE, json=GOOD, headers=op)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["has_admin_token"] is True
    assert "admin_token" not in body and "engine-secret" not in created.text

    assert client.get(f"{BASE}/llm-a", headers=op).json()["id"] == body["id"]
    assert client.get(f"{BASE}/{body['id']}", headers=op).json()["name"] == "llm-a"
    assert [e["name"] for e in client.get(BASE, headers=op).json()] == ["llm-a"]

    patched = client.patch(f"{BASE}/llm-a", json={"approval_mode": "manual"}, headers=op)
    assert patched.status_code == 200 and patched.json()["approval_mode"] == "manual"
    assert client.get(f"{BASE}/llm-a/configs", headers=op).json() == []

    assert client.delete(f"{BASE}/llm-a", headers=op).status_code == 204
    assert client.get(f"{BASE}/llm-a", headers=op).status_code == 404


def test_every_mutation_is_audited(client: TestClient, auth: TokenMaker) -> None:
    op = auth(Role.operator)
    engine_id = client.post(BASE, json=GOOD, headers=op).json()["id"]
    client.patch(f"{BASE}/llm-a", json={"description": "prod"}, headers=op)
    client.delete(f"{BASE}/llm-a", headers=op)
    events = client.get(
        "/api/v1/audit", params={"target_type": "engine", "target_id": engine_id}, headers=op
    ).json()
    assert [e["action"] for e in events] == ["engine.delete", "engine.update", "engine.create"]
    assert {e["actor"] for e in events} == {"user:operator0"}
    assert all("engine-secret" not in str(e["detail"]) for e in events)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({**GOOD, "url": "not a url"}, "url"),
        ({**GOOD, "url": "ftp://127.0.0.1/"}, "url"),
        ({**GOOD, "name": ""}, "name"),
        ({**GOOD, "name": "x" * 300}, "name"),
        ({**GOOD, "name": "9starts-with-digit"}, "name"),
        ({**GOOD, "kind": "tensorflow"}, "kind"),
        ({**GOOD, "approval_mode": "sometimes"}, "approval_mode"),
        ({**GOOD, "colour": "blue"}, "colour"),
        ({k: v for k, v in GOOD.items() if k != "url"}, "url"),
    ],
)
def test_bad_input_is_422_naming_the_field(
    client: TestClient, auth: TokenMaker, payload: dict[str, Any], field: str
) -> None:
    op = auth(Role.operator)
    response = client.post(BASE, json=payload, headers=op)
    assert response.status_code == 422
    assert field in _fields(response)
    assert client.get(BASE, headers=op).json() == []  # nothing stored


def test_malformed_json_is_422(client: TestClient, auth: TokenMaker) -> None:
    headers = {**auth(Role.operator), "Content-Type": "application/json"}
    response = client.post(BASE, content=b"{not json", headers=headers)
    assert response.status_code == 422


def test_null_for_a_required_field_in_patch_is_422(client: TestClient, auth: TokenMaker) -> None:
    op = auth(Role.operator)
    client.post(BASE, json=GOOD, headers=op)
    response = client.patch(f"{BASE}/llm-a", json={"url": None}, headers=op)
    assert response.status_code == 422 and _fields(response) == ["url"]
    assert client.get(f"{BASE}/llm-a", headers=op).json()["url"] == GOOD["url"]


def test_duplicate_name_is_409(client: TestClient, auth: TokenMaker) -> None:
    op = auth(Role.operator)
    assert client.post(BASE, json=GOOD, headers=op).status_code == 201
    response = client.post(BASE, json=GOOD, headers=op)
    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]


def test_unknown_engine_is_404(client: TestClient, auth: TokenMaker) -> None:
    op = auth(Role.operator)
    assert client.get(f"{BASE}/nope", headers=op).status_code == 404
    assert client.get(f"{BASE}/12345", headers=op).status_code == 404
    assert client.patch(f"{BASE}/nope", json={"description": "d"}, headers=op).status_code == 404
    assert client.delete(f"{BASE}/nope", headers=op).status_code == 404
