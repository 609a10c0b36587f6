"""Revision 0014 (teams) on both backends: one membership per (team, user), deleting a user
takes them out of their teams, deleting a team takes its memberships, a clean downgrade."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy import inspect
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from controlplane.settings import Settings
from controlplane.store import schema
from controlplane.store.database import make_engine
from tests.fixtures.db import DatabaseFactory

NOW = "'2026-12-01 03:00:00+00:00'"
TABLES = {"oncall_teams", "oncall_team_members"}


@pytest.fixture
def engine(database_factory: DatabaseFactory, tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(Settings(database_url=database_factory.new_url(), data_dir=tmp_path))
    yield engine
    engine.dispose()


def _members(engine: Engine) -> list[tuple[int, int]]:
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT team_id, user_id FROM oncall_team_members ORDER BY 2"))
        return [(int(t), int(u)) for t, u in rows]


def test_teams_hold_their_invariants_and_downgrade(engine: Engine) -> None:
    schema.upgrade(engine, "0013")
    with engine.begin() as conn:
        for name in ("alice", "bob"):
            conn.execute(
                text(
                    "INSERT INTO users (name, role, disabled, timezone, created, updated) "
                    f"VALUES ('{name}', 'operator', false, 'UTC', {NOW}, {NOW})"
                )
            )
    schema.upgrade(engine, "0014")
    assert TABLES <= set(inspect(engine).get_table_names())
    with engine.begin() as conn:
        conn.execute(
            text(f"INSERT INTO oncall_teams (name, created, updated) VALUES ('sre', {NOW}, {NOW})")
        )
        conn.execute(text("INSERT INTO oncall_team_members (team_id, user_id) VALUES (1, 1)"))
        conn.execute(text("INSERT INTO oncall_team_members (team_id, user_id) VALUES (1, 2)"))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("INSERT INTO oncall_team_members (team_id, user_id) VALUES (1, 1)"))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            text(f"INSERT INTO oncall_teams (name, created, updated) VALUES ('sre', {NOW}, {NOW})")
        )
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM users WHERE name = 'alice'"))
    assert _members(engine) == [(1, 2)]
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM oncall_teams"))
    assert _members(engine) == []
    schema.downgrade(engine, "0013")
    assert not TABLES & set(inspect(engine).get_table_names())
    schema.upgrade(engine)
    assert schema.current_revision(engine) == schema.head_revision()
