"""Hostile and careless requests at the API's edge, on both backends: oversized bodies, ids
past the key range, Unicode digits, NUL and lone surrogates are refused with a clear 4xx before
the store sees them, and an unexpected exception is a logged JSON 500 that leaves the
keep-alive connection usable."""

from __future__ import annotations

import http.client
import json
import logging
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from controlplane.api.app import create_app
from controlplane.domain import Role
from controlplane.settings import ApiSettings
from controlplane.settings import Settings
from tests.fixtures.api import TokenMaker
from tests.fixtures.asgi import serve_asgi
from tests.fixtures.db import SQLITE_ONLY

BEYOND_INT64 = str(2**63)
BEYOND_INT32 = str(2**31)  # table keys are INTEGER on PostgreSQL
ENGINE = {"name": "llm-a", "url": "http://127.0.0.1:9"}


def _locs(response: httpx.Response) -> list[list[Any]]:
    return [err["loc"] for err in response.json()["detail"]]


def _id_routes() -> Iterator[tuple[str, str, list[str]]]:
    """Every (method, path, id-like path parameters) the app serves, from its own routing
    table, so a route added later is covered without editing this test."""
    from controlplane.api.routers import PROTECTED

    for router in PROTECTED:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            params = [p for p in re.findall(r"{(\w+)}", route.path) if p != "name"]
            if params:
                for method in sorted(route.methods):
                    yield method, route.path, params


ID_ROUTES = list(_id_routes())


@SQLITE_ONLY  # path validation happens before any query: one backend says it all
@pytest.mark.parametrize(
    ("method", "path", "params"), ID_ROUTES, ids=[f"{m} {p}" for m, p, _ in ID_ROUTES]
)
def test_every_id_parameter_is_bounded(
    client: TestClient, auth: TokenMaker, method: str, path: str, params: list[str]
) -> None:
    """Each value in one app: an app a case made this test the slowest of the API's."""
    headers = auth(Role.admin)
    body = {} if method in {"POST", "PUT", "PATCH"} else None
    for value in (BEYOND_INT64, BEYOND_INT32, "\u00b3", "0"):
        url = re.sub(r"{(\w+)}", lambda m, v=value: "p99" if m[1] == "name" else v, path)
        response = client.request(method, url, json=body, headers=headers)
        assert response.status_code == 422, (value, response.text)
        locs = _locs(response)
        for param in params:
            assert ["path", param] in locs, (value, locs)


def test_audit_before_id_is_bounded(client: TestClient, auth: TokenMaker) -> None:
    response = client.get(
        "/api/v1/audit", params={"before_id": BEYOND_INT64}, headers=auth(Role.viewer)
    )
    assert response.status_code == 422
    assert _locs(response) == [["query", "before_id"]]


def test_an_engine_id_in_range_still_finds_the_engine(
    client: TestClient, auth: TokenMaker
) -> None:
    op = auth(Role.operator)
    engine_id = client.post("/api/v1/engines", json=ENGINE, headers=op).json()["id"]
    assert client.get(f"/api/v1/engines/{engine_id}", headers=op).json()["name"] == "llm-a"
    assert client.get(f"/api/v1/engines/{2**31 - 1}", headers=op).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "loc"),
    [
        ("POST", "/api/v1/engines", {**ENGINE, "description": "a\x00b"}, ["body", "description"]),
        ("POST", "/api/v1/engines", {**ENGINE, "labels": {"team": "x\x00"}}, ["body", "labels"]),
        ("POST", "/api/v1/engines", {**ENGINE, "admin_token": "t\x00k"}, ["body", "admin_token"]),
        ("PUT", "/api/v1/engines/llm-a/slos", {"spec": "p99_ms<=3\x000"}, ["body", "spec"]),
        (
            "POST",
            "/api/v1/engines/llm-a/rollouts",
            {"changes": {"precision": "bf\x0016"}},
            ["body", "changes"],
        ),
        (
            "POST",
            "/api/v1/chaos/experiments",
            {"target": "netns:a", "fault": "pause\x00", "duration_s": 1},
            ["body", "fault"],
        ),
        (
            "POST",
            "/api/v1/engines",
            {**ENGINE, "description": "a\ud800b"},
            ["body", "description"],
        ),
    ],
)
def test_nul_and_lone_surrogates_in_a_body_are_422_naming_the_field(
    client: TestClient,
    auth: TokenMaker,
    method: str,
    path: str,
    body: dict[str, Any],
    loc: list[str],
) -> None:
    headers = auth(Role.admin)
    if path != "/api/v1/engines":
        assert client.post("/api/v1/engines", json=ENGINE, headers=headers).status_code == 201
    # json.dumps escapes both (\u0000, \ud800), as any JSON client would send them.
    response = client.request(
        method,
        path,
        content=json.dumps(body),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert loc in _locs(response)
    assert client.get("/api/v1/audit", headers=headers).json()[0]["action"] in {
        "engine.create",
        "user.create",
        "token.create",
    }


@pytest.mark.parametrize(
    ("path", "loc"),
    [
        ("/api/v1/audit?actor=a%00b", ["query", "actor"]),
        ("/api/v1/series?engine=e%00&metric=m", ["query", "engine"]),
        ("/api/v1/rollouts?engine=a%00", ["query", "engine"]),
        ("/api/v1/engines/llm-a/slos/p9%009", ["path", "name"]),
    ],
)
def test_nul_in_a_query_or_path_parameter_is_422_naming_it(
    client: TestClient, auth: TokenMaker, path: str, loc: list[str]
) -> None:
    headers = auth(Role.operator)
    client.post("/api/v1/engines", json=ENGINE, headers=headers)
    method = "DELETE" if "/slos/" in path else "GET"
    response = client.request(method, path, headers=headers)
    assert response.status_code == 422, response.text
    assert loc in _locs(response)


def test_chaos_pid_target_with_a_unicode_digit_is_422(
    client: TestClient, auth: TokenMaker
) -> None:
    body = {"target": "pid:²", "fault": "pause", "duration_s": 1}
    response = client.post("/api/v1/chaos/experiments", json=body, headers=auth(Role.admin))
    assert response.status_code == 422
    assert _locs(response) == [["body", "target"]]


def _limited_client(app_settings: Settings, db_engine: Engine) -> TestClient:
    settings = app_settings.model_copy(
        update={"api": ApiSettings(max_body_bytes=4096, max_ingest_body_bytes=65536)}
    )
    return TestClient(create_app(settings, db_engine=db_engine), raise_server_exceptions=False)


def _chunks(total: int, size: int = 1024) -> Iterator[bytes]:
    for _ in range(total // size):
        yield b" " * size


def test_oversized_bodies_are_413_before_authentication(
    app_settings: Settings, db_engine: Engine, auth: TokenMaker
) -> None:
    with _limited_client(app_settings, db_engine) as client:
        big = b'{"name": "' + b"a" * 8192 + b'"}'
        json_type = {"Content-Type": "application/json"}
        # No token at all: the limit answers first (a 401 would mean the body was parsed).
        declared = client.post("/api/v1/engines", content=big, headers=json_type)
        assert declared.status_code == 413
        assert "4096 bytes" in declared.json()["detail"]
        # A chunked body, no Content-Length: counted as it arrives.
        chunked = client.post("/api/v1/engines", content=_chunks(8192), headers=json_type)
        assert chunked.status_code == 413
        assert chunked.json()["detail"] == declared.json()["detail"]
        # Under the limit the request goes on to authentication as before.
        assert client.post("/api/v1/engines", json=ENGINE).status_code == 401


def test_ingest_has_the_larger_limit_only_with_a_token(
    app_settings: Settings, db_engine: Engine, auth: TokenMaker
) -> None:
    rows = [
        {"ts": 1.8e9 + i, "source": "n", "metric": "m", "labels": {}, "value": 1.0}
        for i in range(200)
    ]
    body = json.dumps({"samples": rows}).encode()
    assert 4096 < len(body) < 65536
    headers = {"Content-Type": "application/json", "Idempotency-Key": "batch-edge-1"}
    with _limited_client(app_settings, db_engine) as client:
        anonymous = client.post("/api/v1/ingest", content=body, headers=headers)
        assert anonymous.status_code == 413
        op = auth(Role.operator)
        stored = client.post("/api/v1/ingest", content=body, headers={**headers, **op})
        assert stored.status_code == 200 and stored.json()["stored"] == 200
        too_big = client.post("/api/v1/ingest", content=_chunks(70_000), headers={**headers, **op})
        assert too_big.status_code == 413 and "65536 bytes" in too_big.json()["detail"]
        # Every other route keeps the small limit, with a token too.
        engine = client.post("/api/v1/engines", content=body, headers={**headers, **op})
        assert engine.status_code == 413


def test_an_unexpected_error_is_logged_with_its_traceback_and_keeps_the_connection(
    app_settings: Settings, db_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(app_settings, db_engine=db_engine)

    def explode() -> None:
        raise RuntimeError("the disk is on fire")

    # A route that fails the way a bug would; everything around it is the real app.
    app.add_api_route("/api/v1/explode", explode)
    with serve_asgi(app) as base_url, caplog.at_level(logging.ERROR):
        parts = urlsplit(base_url)
        assert parts.hostname is not None
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        try:
            conn.request("GET", "/api/v1/explode")
            failed = conn.getresponse()
            assert failed.status == 500
            assert json.loads(failed.read()) == {
                "detail": "internal error; see the control plane's log"
            }
            assert failed.getheader("connection") != "close"
            # The same connection answers the next request.
            conn.request("GET", "/healthz")
            assert conn.getresponse().status == 200
        finally:
            conn.close()
    records = [r for r in caplog.records if "unhandled error" in r.getMessage()]
    assert len(records) == 1
    assert records[0].exc_info is not None
    assert isinstance(records[0].exc_info[1], RuntimeError)
    assert "the disk is on fire" in caplog.text and "NoneType: None" not in caplog.text


@pytest.mark.parametrize(
    ("query", "param"),
    [("from=nan", "from"), ("to=inf", "to"), ("from=-1e308", "from"), ("to=1e300", "to")],
)
def test_series_times_are_bounded_and_finite(
    client: TestClient, auth: TokenMaker, query: str, param: str
) -> None:
    response = client.get(f"/api/v1/series?engine=e&metric=m&{query}", headers=auth(Role.viewer))
    assert response.status_code == 422, response.text
    assert _locs(response) == [["query", param]]


def test_series_checks_across_parameters_name_the_query_parameter(
    client: TestClient, auth: TokenMaker
) -> None:
    response = client.get(
        "/api/v1/series?engine=e&metric=m&from=2000000000&to=1900000000",
        headers=auth(Role.viewer),
    )
    assert response.status_code == 422
    assert _locs(response) == [["query", "from"]]


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("/api/v1/engines/llm-a/rollouts", '{"changes": {"max_batch_size": NaN}}', "changes"),
        ("/api/v1/engines/llm-a/rollouts", '{"changes": {"x": Infinity}}', "changes"),
    ],
)
def test_nan_and_infinity_in_a_body_are_422(
    client: TestClient, auth: TokenMaker, path: str, body: str, loc: str
) -> None:
    headers = auth(Role.operator)
    client.post("/api/v1/engines", json=ENGINE, headers=headers)
    response = client.post(
        path, content=body, headers={**headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert ["body", loc] in _locs(response)
