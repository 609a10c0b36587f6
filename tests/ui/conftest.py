"""The UI under test: the real app on the shared migrated store, signed in through the real
sign-in form (a user and an API token per role)."""

from __future__ import annotations

import re
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from controlplane.api.app import create_app
from controlplane.domain import Role
from controlplane.settings import Settings
from controlplane.store import users
from controlplane.store.database import make_session_factory
from controlplane.store.database import unit_of_work

CSRF_META = re.compile(r'<meta name="csrf-token" content="([0-9a-f]+)">')


@dataclass
class Account:
    name: str
    token: str


@pytest.fixture
def ui_app_client(app_settings: Settings, db_engine: Engine) -> Iterator[TestClient]:
    app = create_app(app_settings, db_engine=db_engine)
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as c:
        yield c


AccountMaker = Callable[[Role], Account]


@pytest.fixture
def account(db_engine: Engine) -> AccountMaker:
    counter = iter(range(1_000_000))

    def make(role: Role) -> Account:
        name = f"ui-{role.value}{next(counter)}"
        with unit_of_work(make_session_factory(db_engine)) as s:
            user = users.create_user(s, name=name, role=role, actor="t")
            _row, secret = users.create_token(s, user=user, name="ui", ttl=None, actor="t")
        return Account(name, secret)

    return make


def sign_in(client: TestClient, who: Account) -> str:
    """Signs the client in through the form; returns the CSRF token its pages carry."""
    response = client.post("/ui/sign-in", data={"name": who.name, "token": who.token})
    assert response.status_code == 303, response.text
    fleet = client.get("/ui/fleet")
    assert fleet.status_code == 200, fleet.text
    found = CSRF_META.search(fleet.text)
    assert found is not None
    return found.group(1)


# --- the real browser -------------------------------------------------------------------
# Debian's chromium, by path: Playwright cannot download its own browser here (and never
# should: `playwright install` is not part of this project's set-up).
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, object]) -> dict[str, object]:
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": ["--no-sandbox"]}
