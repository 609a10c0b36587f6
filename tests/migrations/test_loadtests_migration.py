"""Revision 0013 (load tests) on both backends: a load test and its steps go with their
engine, a step index is unique per load test, and a clean downgrade."""

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


def _step(conn: object, index: int) -> None:
    conn.execute(  # type: ignore[attr-defined]
        text(
            'INSERT INTO load_test_steps (load_test_id, "index", offered, throughput_rps, '
            "output_tokens_per_s, requests, errors, rejected, error_rate, meets_slo, stable, "
            "windows, throughput_noise, p99_noise, duration_s, created) VALUES "
            f"(1, {index}, 4, 50, 400, 100, 0, 0, 0, true, true, 3, 0.02, 0.05, 3, {NOW})"
        )
    )


def test_load_tests_follow_engines_and_downgrade(engine: Engine) -> None:
    schema.upgrade(engine, "0013")
    assert {"load_tests", "load_test_steps"} <= set(inspect(engine).get_table_names())
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
                "INSERT INTO load_tests (engine_id, state, kind, spec, actor, created, updated) "
                f"VALUES (1, 'done', 'concurrency', '{{}}', 't', {NOW}, {NOW})"
            )
        )
        _step(conn, 0)
        _step(conn, 1)
    with pytest.raises(IntegrityError), engine.begin() as conn:
        _step(conn, 1)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM engines"))
        assert conn.execute(text("SELECT count(*) FROM load_test_steps")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM load_tests")).scalar() == 0
    schema.downgrade(engine, "0012")
    tables = set(inspect(engine).get_table_names())
    assert "load_tests" not in tables and "load_test_steps" not in tables
