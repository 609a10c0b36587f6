"""What an authenticated but hostile or careless caller must not get: an engine's admin token
sent to a URL of their choosing, another service's body echoed in an error, credentials in
URLs, refusals that leave no trace, or a disabled user's token that still works."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy import text

from controlplane.domain import Role
from controlplane.store.database import make_session_factory
from tests.fixtures.api import TokenMaker

BASE = "/api/v1/engines"
SECRET_BODY = "SECRET-INTERNAL-BODY-1234"


class _Target:
    """A loopback HTTP service that answers every request with ``status`` and ``body`` and
    remembers the Authorization headers it was sent."""

    def __init__(self) -> None:
        self.status = 500
        self.body = SECRET_BODY.encode()
        self.auth: list[str | None] = []
        target = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                target.auth.append(self.headers.get("Authorization"))
                self.send_response(target.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(target.body)))
                self.end_headers()
                self.wfile.write(target.body)

            do_GET = do_PUT = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def target() -> Iterator[_Target]:
    t = _Target()
    yield t
    t.close()


def _dry_run(client: TestClient, headers: dict[str, str]) -> Any:
    return client.post(
        f"{BASE}/llm-a/rollouts",
        json={"changes": {"max_batch_size": 4}, "dry_run": True},
        headers=headers,
    )


def test_a_new_url_without_the_token_is_422_and_the_token_never_goes_there(
    client: TestClient, auth: TokenMaker, target: _Target
) -> None:
    op = auth(Role.operator)
    body = {"name": "llm-a", "url": "http://127.0.0.1:9", "admin_token": "engine-secret"}
    assert client.post(BASE, json=body, headers=op).status_code == 201
    moved = client.patch(f"{BASE}/llm-a", json={"url": target.url}, headers=op)
    assert moved.status_code == 422, moved.text
    assert moved.json()["detail"][0]["loc"] == ["body", "admin_token"]
    assert "url" in moved.json()["detail"][0]["msg"]
    _dry_run(client, op)  # still the old URL: nothing reaches the target
    assert target.auth == []
    dropped = client.patch(
        f"{BASE}/llm-a", json={"url": target.url, "admin_token": None}, headers=op
    )
    assert dropped.status_code == 200 and dropped.json()["has_admin_token"] is False
    _dry_run(client, op)
    assert target.auth and all(a is None for a in target.auth)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, SECRET_BODY),
        (403, json.dumps({"detail": SECRET_BODY})),
        (422, json.dumps({"detail": SECRET_BODY})),
        (400, SECRET_BODY),
    ],
)
def test_error_replies_never_echo_what_the_target_answered(
    client: TestClient, auth: TokenMaker, target: _Target, status: int, body: str
) -> None:
    op = auth(Role.operator)
    client.post(BASE, json={"name": "llm-a", "url": target.url}, headers=op)
    target.status, target.body = status, body.encode()
    reply = _dry_run(client, op)
    assert reply.status_code in (422, 502), reply.text
    assert SECRET_BODY not in reply.text and "SECRET" not in reply.text


def test_the_engines_own_refusal_reason_is_kept(
    client: TestClient, auth: TokenMaker, target: _Target
) -> None:
    op = auth(Role.operator)
    client.post(BASE, json={"name": "llm-a", "url": target.url}, headers=op)
    target.status = 422
    target.body = json.dumps({"error": {"message": "knob x\x00 is odd", "param": "x"}}).encode()
    reply = _dry_run(client, op)
    assert reply.status_code == 422 and "knob x  is odd" in reply.text


def test_viewers_and_the_audit_log_never_see_url_credentials(
    client: TestClient, auth: TokenMaker
) -> None:
    op, viewer = auth(Role.operator), auth(Role.viewer)
    body = {"name": "llm-a", "url": "http://svc:pw-in-url@127.0.0.1:9"}
    created = client.post(BASE, json=body, headers=op)
    assert created.status_code == 201 and "pw-in-url" not in created.text
    client.patch(
        f"{BASE}/llm-a", json={"metrics_url": "http://m:pw-metrics@127.0.0.1:9/m"}, headers=op
    )
    for path in (BASE, f"{BASE}/llm-a", "/api/v1/audit"):
        reply = client.get(path, headers=viewer)
        assert reply.status_code == 200
        assert "pw-in-url" not in reply.text and "pw-metrics" not in reply.text
    assert client.get(f"{BASE}/llm-a", headers=viewer).json()["url"] == "http://***@127.0.0.1:9"


def test_each_ingest_batch_is_one_audit_event_with_counts(
    client: TestClient, auth: TokenMaker
) -> None:
    op = auth(Role.operator)
    rows = [
        {"ts": 1_800_000_000.0 + i, "source": f"n{i % 2}", "metric": "m", "value": 1.0}
        for i in range(10)
    ]
    for _ in range(2):  # the retry is a duplicate: nothing stored, nothing audited
        client.post(
            "/api/v1/ingest",
            json={"samples": rows},
            headers={**op, "Idempotency-Key": "batch-audit-1"},
        )
    events = client.get("/api/v1/audit", params={"action": "ingest.batch"}, headers=op).json()
    assert len(events) == 1
    assert events[0]["target_id"] == "batch-audit-1"
    assert events[0]["detail"] == {
        "samples": 10,
        "stored": 10,
        "sources": ["n0", "n1"],
        "source_count": 2,
    }


def _failures(client: TestClient) -> dict[str, float]:
    found: dict[str, float] = {}
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("cplane_api_auth_failures_total{"):
            status = line.split('status="')[1].split('"')[0]
            found[status] = float(line.rsplit(" ", 1)[1])
    return found


def test_refused_requests_are_counted_and_logged_with_a_rate_limit(
    client: TestClient, auth: TokenMaker, caplog: pytest.LogCaptureFixture
) -> None:
    viewer = auth(Role.viewer)
    caplog.set_level(logging.WARNING, logger="controlplane.api.auth_failures")
    for _ in range(5):
        assert client.get(BASE, headers={"Authorization": "Bearer cpt_wrong"}).status_code == 401
    assert client.get(BASE).status_code == 401
    for _ in range(3):
        assert client.post(BASE, json={}, headers=viewer).status_code == 403
    assert _failures(client) == {"401": 6.0, "403": 3.0}
    lines = [r.getMessage() for r in caplog.records if r.name.endswith("auth_failures")]
    assert len(lines) == 1 and "401" in lines[0]
    assert "cpt_wrong" not in caplog.text


def test_admins_disable_enable_and_change_roles_and_it_is_audited(
    client: TestClient, auth: TokenMaker
) -> None:
    admin, op = auth(Role.admin), auth(Role.operator)
    name = client.get("/api/v1/whoami", headers=op).json()["name"]
    assert (
        client.patch(f"/api/v1/users/{name}", json={"disabled": True}, headers=op).status_code
        == 403
    )
    assert client.get("/api/v1/users", headers=op).status_code == 403

    r = client.patch(f"/api/v1/users/{name}", json={"disabled": True}, headers=admin)
    assert r.status_code == 200 and r.json()["disabled"] is True
    assert client.get("/api/v1/whoami", headers=op).status_code == 401
    r = client.patch(
        f"/api/v1/users/{name}", json={"disabled": False, "role": "viewer"}, headers=admin
    )
    assert r.status_code == 200 and r.json()["role"] == "viewer"
    assert client.get("/api/v1/whoami", headers=op).json()["role"] == "viewer"
    assert client.post(BASE, json={}, headers=op).status_code == 403

    me = client.get("/api/v1/whoami", headers=admin).json()["name"]
    last = client.patch(f"/api/v1/users/{me}", json={"role": "viewer"}, headers=admin)
    assert last.status_code == 409 and "no enabled admin" in last.text
    assert (
        client.patch(f"/api/v1/users/{name}", json={"role": "god"}, headers=admin).status_code
        == 422
    )
    assert (
        client.patch("/api/v1/users/nobody", json={"disabled": True}, headers=admin).status_code
        == 404
    )
    actions = [
        e["action"]
        for e in client.get("/api/v1/audit", params={"target_type": "user"}, headers=admin).json()
    ]
    assert actions[:3] == ["user.enable", "user.role", "user.disable"]


def test_reads_are_served_while_a_writer_holds_the_sqlite_lock(
    client: TestClient, auth: TokenMaker, db_engine: Engine
) -> None:
    if db_engine.dialect.name != "sqlite":
        pytest.skip("SQLite's write lock")
    viewer = auth(Role.viewer)
    assert client.get(BASE, headers=viewer).status_code == 200  # stamps last_used_at now
    with make_session_factory(db_engine)() as writer, writer.begin():
        writer.execute(text("UPDATE users SET disabled = disabled"))  # holds the write lock
        reply = client.get(BASE, headers=viewer)
        assert reply.status_code == 200, reply.text
        assert client.get("/api/v1/audit", headers=viewer).status_code == 200


def test_readiness_does_not_queue_for_the_sqlite_write_lock(
    client: TestClient, db_engine: Engine
) -> None:
    if db_engine.dialect.name != "sqlite":
        pytest.skip("SQLite's write lock")
    with make_session_factory(db_engine)() as writer, writer.begin():
        writer.execute(text("UPDATE users SET disabled = disabled"))  # holds the write lock
        reply = client.get("/readyz")
        assert reply.status_code == 200, reply.text
