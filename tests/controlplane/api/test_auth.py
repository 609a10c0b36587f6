from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from controlplane.domain import Role
from controlplane.store import users
from controlplane.store.database import make_session_factory
from controlplane.store.database import unit_of_work
from tests.fixtures.api import TokenMaker

ENGINE = {"name": "e", "url": "http://127.0.0.1:1"}


def test_no_token_is_401_with_challenge(client: TestClient) -> None:
    response = client.get("/api/v1/engines")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_wrong_token_is_401(client: TestClient) -> None:
    response = client.get("/api/v1/engines", headers={"Authorization": "Bearer cpt_nope"})
    assert response.status_code == 401


def test_viewer_reads_but_may_not_mutate(client: TestClient, auth: TokenMaker) -> None:
    viewer = auth(Role.viewer)
    assert client.get("/api/v1/engines", headers=viewer).status_code == 200
    response = client.post("/api/v1/engines", json=ENGINE, headers=viewer)
    assert response.status_code == 403
    assert "operator" in response.json()["detail"]
    assert client.get("/api/v1/engines", headers=viewer).json() == []


@pytest.mark.parametrize("role", [Role.operator, Role.admin])
def test_operator_and_admin_may_mutate(client: TestClient, auth: TokenMaker, role: Role) -> None:
    assert client.post("/api/v1/engines", json=ENGINE, headers=auth(role)).status_code == 201


def test_revoked_token_stops_working(client: TestClient, db_engine: Engine) -> None:
    with unit_of_work(make_session_factory(db_engine)) as s:
        user = users.create_user(s, name="rev", role=Role.admin, actor="t")
        row, secret = users.create_token(s, user=user, name="x", ttl=None, actor="t")
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/whoami", headers=headers).json()["name"] == "rev"
    with unit_of_work(make_session_factory(db_engine)) as s:
        users.revoke_token(s, token_id=row.id, actor="t")
    assert client.get("/api/v1/whoami", headers=headers).status_code == 401


def test_every_route_but_health_and_docs_requires_a_token(client: TestClient) -> None:
    public = {"/healthz", "/readyz"}
    checked = 0
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        if path in public:
            continue
        for method in operations:
            url = path.replace("{engine}", "e")
            assert client.request(method.upper(), url).status_code == 401, (method, path)
            checked += 1
    assert checked >= 7
