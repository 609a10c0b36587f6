"""Revision 0010 (on-call) on both backends: existing users get a timezone, one open
incident per grouping key (a resolved one does not count), a user on a schedule cannot be
deleted from under it, one outbox row per idempotency key, a clean downgrade."""

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
TABLES = {"incidents", "incident_alerts", "incident_events", "notifications", "oncall_layers"}


@pytest.fixture
def engine(database_factory: DatabaseFactory, tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(Settings(database_url=database_factory.new_url(), data_dir=tmp_path))
    yield engine
    engine.dispose()


def _incident(conn: Connection, state: str) -> None:
    conn.execute(
        text(
            "INSERT INTO incidents (group_hash, group_labels, labels, annotations, title, state, "
            "auto_resolve, escalation_step, escalation_loop, triggered_at, created, updated) "
            f"VALUES ('h1', '{{}}', '{{}}', '{{}}', 't', '{state}', true, 0, 0, {NOW}, {NOW}, "
            f"{NOW})"
        )
    )


def _notification(conn: Connection, key: str) -> None:
    conn.execute(
        text(
            "INSERT INTO notifications (channel, action, state, idempotency_key, attempts, "
            f"retry_at, created, updated) VALUES ('email', 'trigger', 'pending', '{key}', 0, "
            f"{NOW}, {NOW}, {NOW})"
        )
    )


def test_oncall_tables_hold_their_invariants_and_downgrade(engine: Engine) -> None:
    schema.upgrade(engine, "0009")
    with engine.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO users (name, role, disabled, created, updated) VALUES "
                f"('alice', 'operator', false, {NOW}, {NOW})"
            )
        )
    schema.upgrade(engine, "0010")
    assert TABLES <= set(inspect(engine).get_table_names())
    with engine.begin() as conn:
        assert conn.execute(text("SELECT timezone FROM users")).scalar() == "UTC"
        _incident(conn, "resolved")
        _incident(conn, "triggered")  # a resolved incident of the key does not block
    with pytest.raises(IntegrityError), engine.begin() as conn:
        _incident(conn, "acknowledged")  # a second open one does
    with engine.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO oncall_schedules (name, timezone, description, created, updated) "
                f"VALUES ('primary', 'UTC', '', {NOW}, {NOW})"
            )
        )
        conn.execute(
            text(
                "INSERT INTO oncall_layers (schedule_id, position, name, kind, start_local, "
                "length, restrictions) VALUES (1, 0, 'l', 'daily', '2026-01-01T09:00:00', 1, "
                "'[]')"
            )
        )
        conn.execute(
            text("INSERT INTO oncall_layer_members (layer_id, position, user_id) VALUES (1, 0, 1)")
        )
        _notification(conn, "k1")
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("DELETE FROM users"))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        _notification(conn, "k1")
    schema.downgrade(engine, "0009")
    assert not TABLES & set(inspect(engine).get_table_names())
    assert "timezone" not in {c["name"] for c in inspect(engine).get_columns("users")}
    schema.upgrade(engine)
    assert schema.current_revision(engine) == schema.head_revision()
