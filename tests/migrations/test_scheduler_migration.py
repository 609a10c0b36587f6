"""Revision 0006 (scheduler tables) on both backends: one run per firing, foreign keys that
let engines, schedules and tuning runs go without losing history, and a clean downgrade."""

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

TABLES = {"scheduler_leases", "jobs", "schedules", "job_runs"}
NOW = "'2026-12-01 03:00:00+00:00'"


@pytest.fixture
def engine(database_factory: DatabaseFactory, tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(Settings(database_url=database_factory.new_url(), data_dir=tmp_path))
    yield engine
    engine.dispose()


def _insert_run(conn: object, job: str, schedule_id: str = "NULL") -> None:
    conn.execute(  # type: ignore[attr-defined]
        text(
            "INSERT INTO job_runs (job, schedule_id, state, detail, scheduled_for, created, "
            f"updated) VALUES ('{job}', {schedule_id}, 'started', '{{}}', {NOW}, {NOW}, {NOW})"
        )
    )


def test_scheduler_tables_hold_one_run_per_firing_and_downgrade(engine: Engine) -> None:
    schema.upgrade(engine, "0006")
    assert TABLES <= set(inspect(engine).get_table_names())
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO scheduler_leases (name) VALUES ('scheduler')"))
        assert conn.execute(text("SELECT token FROM scheduler_leases")).scalar() == 0
        conn.execute(
            text(
                "INSERT INTO engines (name, kind, url, approval_mode, description, labels, "
                f"created, updated) VALUES ('e', 'reference', 'http://x', 'auto', '', '{{}}', "
                f"{NOW}, {NOW})"
            )
        )
        conn.execute(
            text(
                "INSERT INTO schedules (name, engine_id, cron, timezone, spec, skip, "
                "created_by, created, updated) VALUES ('nightly', 1, '0 3 * * *', 'UTC', "
                f"'{{}}', '{{}}', 'alice', {NOW}, {NOW})"
            )
        )
        assert conn.execute(text("SELECT paused FROM schedules")).scalar() in (False, 0)
        _insert_run(conn, "schedule:1", "1")
        _insert_run(conn, "retention")
    with pytest.raises(IntegrityError), engine.begin() as conn:
        _insert_run(conn, "retention")
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM engines"))  # cascades to the schedule
        kept = conn.execute(text("SELECT job, schedule_id FROM job_runs ORDER BY job")).all()
    assert [tuple(r) for r in kept] == [("retention", None), ("schedule:1", None)]
    schema.downgrade(engine, "0005")
    assert not TABLES & set(inspect(engine).get_table_names())
    schema.upgrade(engine)
    assert schema.current_revision(engine) == schema.head_revision()
