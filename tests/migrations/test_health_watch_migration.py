"""Revision 0007 (health watch) on both backends: one row per engine, removed with it, a
rollout it names may go without taking the row along, and a clean downgrade."""

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


@pytest.fixture
def engine(database_factory: DatabaseFactory, tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(Settings(database_url=database_factory.new_url(), data_dir=tmp_path))
    yield engine
    engine.dispose()


def _watch(conn: object, engine_id: int, rollout: str = "NULL") -> None:
    conn.execute(  # type: ignore[attr-defined]
        text(
            "INSERT INTO health_watches (engine_id, failures, watched_rollout_id, updated_by, "
            f"created, updated) VALUES ({engine_id}, 2, {rollout}, 'alice', {NOW}, {NOW})"
        )
    )


def test_health_watch_table_follows_engines_and_downgrades(engine: Engine) -> None:
    schema.upgrade(engine, "0007")
    assert "health_watches" in inspect(engine).get_table_names()
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO engines (name, kind, url, approval_mode, description, labels, "
                f"created, updated) VALUES ('e', 'reference', 'http://x', 'auto', '', '{{}}', "
                f"{NOW}, {NOW})"
            )
        )
        conn.execute(
            text(
                "INSERT INTO rollouts (engine_id, reason, actor, state, evidence, created, "
                f"updated) VALUES (1, 'manual', 't', 'committed', '{{}}', {NOW}, {NOW})"
            )
        )
        _watch(conn, 1, rollout="1")
        row = conn.execute(
            text("SELECT consecutive_failures, interval_s, failures FROM health_watches")
        ).one()
        assert tuple(row) == (0, None, 2)
    with pytest.raises(IntegrityError), engine.begin() as conn:
        _watch(conn, 1)  # one row per engine
    with pytest.raises(IntegrityError), engine.begin() as conn:
        _watch(conn, 99)  # no such engine
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM rollouts"))
        assert conn.execute(text("SELECT watched_rollout_id FROM health_watches")).one() == (None,)
        conn.execute(text("DELETE FROM engines"))
        assert conn.execute(text("SELECT count(*) FROM health_watches")).scalar() == 0
    schema.downgrade(engine, "0006")
    assert "health_watches" not in inspect(engine).get_table_names()
    schema.upgrade(engine)
    assert schema.current_revision(engine) == schema.head_revision()
