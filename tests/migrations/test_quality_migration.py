"""Revision 0012 (quality references) on both backends: one row per engine, JSON kept as
written, removed with its engine, and a clean downgrade."""

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


def _reference(conn: object, engine_id: int) -> None:
    conn.execute(  # type: ignore[attr-defined]
        text(
            "INSERT INTO quality_references (engine_id, config, top_k, answers, recorded_by, "
            f'created, updated) VALUES ({engine_id}, \'{{"precision": "fp32"}}\', 5, '
            f"'[{{\"id\": \"p1\"}}]', 'alice', {NOW}, {NOW})"
        )
    )


def test_quality_references_follow_engines_and_downgrade(engine: Engine) -> None:
    schema.upgrade(engine, "0012")
    assert "quality_references" in inspect(engine).get_table_names()
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO engines (name, kind, url, approval_mode, description, labels, "
                f"created, updated) VALUES ('e', 'reference', 'http://x', 'auto', '', '{{}}', "
                f"{NOW}, {NOW})"
            )
        )
        _reference(conn, 1)
        row = conn.execute(text("SELECT top_k, recorded_by FROM quality_references")).one()
        assert tuple(row) == (5, "alice")
    with pytest.raises(IntegrityError), engine.begin() as conn:
        _reference(conn, 1)  # one row per engine
    with pytest.raises(IntegrityError), engine.begin() as conn:
        _reference(conn, 99)  # no such engine
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM engines"))
        assert conn.execute(text("SELECT count(*) FROM quality_references")).scalar() == 0
    schema.downgrade(engine, "0011")
    assert "quality_references" not in inspect(engine).get_table_names()
    schema.upgrade(engine)
    assert schema.current_revision(engine) == schema.head_revision()
