from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from controlplane.store import schema


def test_health_and_docs_need_no_token(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "/api/v1/engines" in spec["paths"]
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


def test_readyz_turns_503_when_the_schema_falls_behind(
    client: TestClient, db_engine: Engine
) -> None:
    schema.downgrade(db_engine, "base")
    try:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert "cplane db upgrade" in response.json()["reason"]
    finally:
        schema.upgrade(db_engine)
