"""Signing in to the web UI: a server-side session behind an HttpOnly, SameSite=Lax cookie
(Secure and ``__Host-`` under TLS) that sign-out, token revocation and disabling the user
end at once; pages redirect when signed out; every post needs the session's CSRF token."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from controlplane.domain import Role
from controlplane.domain import UnauthenticatedError
from controlplane.store import ui_sessions
from controlplane.store import users
from controlplane.store.base import utcnow
from controlplane.store.database import make_session_factory
from controlplane.store.database import unit_of_work
from tests.fixtures.db import SQLITE_ONLY
from tests.ui.conftest import AccountMaker
from tests.ui.conftest import sign_in

PAGES = [
    "/ui/fleet",
    "/ui/rollouts",
    "/ui/tuning",
    "/ui/alerts",
    "/ui/oncall",
    "/ui/admin",
    "/ui/chaos",
]


@SQLITE_ONLY
def test_signed_out_pages_redirect_to_sign_in(ui_app_client: TestClient) -> None:
    for path in PAGES:
        response = ui_app_client.get(path + "?x=1")
        assert response.status_code == 303, path
        assert response.headers["location"] == f"/ui/sign-in?next={path}%3Fx%3D1"
        htmx = ui_app_client.get(path, headers={"HX-Request": "true"})
        assert htmx.status_code == 204 and htmx.headers["hx-redirect"].startswith("/ui/sign-in")
    assert ui_app_client.get("/").headers["location"] == "/ui/fleet"


@SQLITE_ONLY
def test_sign_in_sets_a_strict_cookie_and_refuses_wrong_tokens(
    ui_app_client: TestClient, account: AccountMaker
) -> None:
    alice, bob = account(Role.operator), account(Role.viewer)
    for name, token in ((alice.name, "cpt_wrong"), (alice.name, bob.token), ("nobody", "x")):
        response = ui_app_client.post("/ui/sign-in", data={"name": name, "token": token})
        assert response.status_code == 401
        assert "unknown user or invalid token" in response.text
        assert "set-cookie" not in response.headers
    cross = ui_app_client.post(
        "/ui/sign-in",
        data={"name": alice.name, "token": alice.token},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403 and "set-cookie" not in cross.headers
    response = ui_app_client.post(
        "/ui/sign-in", data={"name": alice.name, "token": alice.token, "next": "//evil.example"}
    )
    assert response.status_code == 303 and response.headers["location"] == "/ui/fleet"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("cp_session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=43200" in cookie
    assert "Secure" not in cookie
    assert alice.token not in cookie  # the cookie is a session secret, not the API token


@SQLITE_ONLY
def test_under_tls_the_cookie_is_secure_and_host_prefixed(
    ui_app_client: TestClient, account: AccountMaker
) -> None:
    alice = account(Role.viewer)
    tls = TestClient(ui_app_client.app, base_url="https://cp.example", follow_redirects=False)
    response = tls.post("/ui/sign-in", data={"name": alice.name, "token": alice.token})
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("__Host-cp_session=") and "Secure" in cookie and "Path=/" in cookie
    assert tls.get("/ui/fleet").status_code == 200


def test_sign_out_token_revocation_and_disabling_end_the_session(
    ui_app_client: TestClient, account: AccountMaker, db_engine: Engine
) -> None:
    alice = account(Role.admin)
    csrf = sign_in(ui_app_client, alice)
    secret = ui_app_client.cookies["cp_session"]
    out = ui_app_client.post("/ui/sign-out", data={"csrf": csrf})
    assert out.status_code == 303 and out.headers["location"] == "/ui/sign-in"
    ui_app_client.cookies.set("cp_session", secret)  # a copy of the old cookie
    assert ui_app_client.get("/ui/fleet").status_code == 303

    sign_in(ui_app_client, alice)
    with unit_of_work(make_session_factory(db_engine)) as s:
        token = users.list_tokens(s, user=users.get_user(s, alice.name))[0]
        users.revoke_token(s, token_id=token.id, actor="t")
    assert ui_app_client.get("/ui/fleet").status_code == 303

    bob = account(Role.viewer)
    sign_in(ui_app_client, bob)
    with unit_of_work(make_session_factory(db_engine)) as s:
        users.set_disabled(s, name=bob.name, disabled=True, actor="t")
    assert ui_app_client.get("/ui/fleet").status_code == 303
    events = _audit_actions(ui_app_client, account)
    assert {"ui.sign_in", "ui.sign_out"} <= events


def _audit_actions(client: TestClient, account: AccountMaker) -> set[str]:
    admin = account(Role.admin)
    rows = client.get("/api/v1/audit", headers={"Authorization": f"Bearer {admin.token}"})
    return {e["action"] for e in rows.json()}


@SQLITE_ONLY
def test_posts_need_the_csrf_token_and_the_same_origin(
    ui_app_client: TestClient, account: AccountMaker
) -> None:
    alice = account(Role.operator)
    csrf = sign_in(ui_app_client, alice)
    ui_app_client.post(
        "/api/v1/engines",
        json={"name": "e1", "url": "http://127.0.0.1:9"},
        headers={"Authorization": f"Bearer {alice.token}"},
    )
    url = "/ui/engines/e1/slos"
    body = {"spec": "p99_ms<=300"}
    assert ui_app_client.post(url, data=body).status_code == 403
    assert ui_app_client.post(url, data={**body, "csrf": "0" * 64}).status_code == 403
    cross = ui_app_client.post(
        url, data={**body, "csrf": csrf}, headers={"Origin": "https://evil.example"}
    )
    assert cross.status_code == 403
    assert ui_app_client.get("/ui/engines/e1").text.count("p99_ms&lt;=300") == 0
    # The header htmx sends works like the form field.
    ok = ui_app_client.post(
        url, data=body, headers={"X-CSRF-Token": csrf, "Origin": "http://testserver"}
    )
    assert ok.status_code == 303
    assert "p99_ms&lt;=300" in ui_app_client.get("/ui/engines/e1").text
    # Signed out, a post is refused outright rather than redirected.
    ui_app_client.cookies.clear()
    assert ui_app_client.post(url, data={**body, "csrf": csrf}).status_code == 401


@SQLITE_ONLY
def test_every_page_sends_the_strict_csp_and_no_inline_script(
    ui_app_client: TestClient, account: AccountMaker
) -> None:
    sign_in(ui_app_client, account(Role.admin))
    for path in [*PAGES, "/ui/sign-in"]:
        response = ui_app_client.get(path)
        assert response.status_code == 200, path
        csp = response.headers["content-security-policy"]
        assert csp.startswith("default-src 'self'") and "unsafe" not in csp
        assert response.headers["x-frame-options"] == "DENY"
        html = response.text
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
        assert not re.search(r"\son[a-z]+=", html), path
        assert not re.search(r"https?://(?!testserver)[a-z]", html.split("</head>")[0]), path


def test_a_session_expires_and_needs_its_own_users_token(
    account: AccountMaker, db_engine: Engine
) -> None:
    alice, bob = account(Role.operator), account(Role.viewer)
    factory = make_session_factory(db_engine)
    now = utcnow()
    with unit_of_work(factory) as s:
        _row, secret = ui_sessions.sign_in(
            s, name=alice.name, token=alice.token, ttl=timedelta(minutes=5), now=now
        )
        with pytest.raises(UnauthenticatedError):
            ui_sessions.sign_in(s, name=alice.name, token=bob.token, ttl=timedelta(hours=1))
    with factory() as s:
        assert ui_sessions.verify(s, secret, now=now + timedelta(minutes=4)).name == alice.name
        with pytest.raises(UnauthenticatedError):
            ui_sessions.verify(s, secret, now=now + timedelta(minutes=5))
        with pytest.raises(UnauthenticatedError):
            ui_sessions.verify(s, "not-a-session")
    with unit_of_work(factory) as s:
        assert ui_sessions.prune(s, before=now + timedelta(minutes=4)) == 0
        assert ui_sessions.prune(s, before=now + timedelta(minutes=6)) == 1
