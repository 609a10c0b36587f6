"""Revision 0011 (web UI sessions) on both backends: one row per cookie secret, sessions go
with their user and with the token that opened them, a clean downgrade."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection
from sqlalchemy import Engine
from sqlalchemy import inspect
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from controlplane.settings import Settings
from controlplane.store import schema
from controlplane.store.database import make_engine
from tests.fixtures.db import DatabaseFactory

NOW = "'2026-12-01 03:00:00+00:00'"


@pytest.fixture
def engine(database_factory: DatabaseFactory, tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(Settings(database_url=database_factory.new_url(), data_dir=tmp_path))
    yield engine
    engine.dispose()


def _session(conn: Connection, secret_hash: str, user_id: int = 1, token_id: int = 1) -> None:
    conn.execute(
        text(
            "INSERT INTO ui_sessions (secret_hash, user_id, token_id, created, expires_at) "
            f"VALUES ('{secret_hash}', {user_id}, {token_id}, {NOW}, {NOW})"
        )
    )


def test_ui_sessions_are_unique_go_with_user_and_token_and_downgrade(engine: Engine) -> None:
    schema.upgrade(engine, "0011")
    assert "ui_sessions" in inspect(engine).get_table_names()
    with engine.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO users (name, role, disabled, created, updated) VALUES "
                f"('u', 'admin', false, {NOW}, {NOW})"
            )
        )
        for n in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO api_tokens (user_id, name, token_hash, prefix, created) "
                    f"VALUES (1, 't{n}', 'h{n}', 'cpt_', {NOW})"
                )
            )
        _session(conn, "a", token_id=1)
        _session(conn, "b", token_id=2)
    with pytest.raises(IntegrityError), engine.begin() as conn:
        _session(conn, "a")  # one row per secret
    with pytest.raises(IntegrityError), engine.begin() as conn:
        _session(conn, "c", user_id=99)  # no such user
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM api_tokens WHERE id = 1"))
        assert conn.execute(text("SELECT secret_hash FROM ui_sessions")).scalars().all() == ["b"]
        conn.execute(text("DELETE FROM users"))
        assert conn.execute(text("SELECT count(*) FROM ui_sessions")).scalar() == 0
    schema.downgrade(engine, "0010")
    assert "ui_sessions" not in inspect(engine).get_table_names()
    schema.upgrade(engine)
    assert schema.current_revision(engine) == schema.head_revision()
