"""Revision 0009 (alerts) on both backends: one row per fingerprint, the engine link cleared
(the alert kept) when its engine goes, history removed with its alert, a clean downgrade."""

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


def _alert(conn: Connection, fingerprint: str, engine_id: str = "NULL") -> None:
    conn.execute(
        text(
            "INSERT INTO alerts (fingerprint, alertname, engine_id, labels, annotations, state, "
            "source, starts_at, last_received_at, created, updated) VALUES "
            f"('{fingerprint}', 'EngineDown', {engine_id}, '{{}}', '{{}}', 'firing', "
            f"'alertmanager', {NOW}, {NOW}, {NOW}, {NOW})"
        )
    )


def test_alert_tables_dedupe_keep_alerts_of_removed_engines_and_downgrade(
    engine: Engine,
) -> None:
    schema.upgrade(engine, "0009")
    tables = inspect(engine).get_table_names()
    assert {"alerts", "alert_events"} <= set(tables)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO engines (name, kind, url, approval_mode, description, labels, "
                f"created, updated) VALUES ('e', 'reference', 'http://x', 'auto', '', '{{}}', "
                f"{NOW}, {NOW})"
            )
        )
        _alert(conn, "c0ffee", engine_id="1")
        conn.execute(
            text(
                "INSERT INTO alert_events (alert_id, state, at, payload) VALUES "
                f"(1, 'firing', {NOW}, '{{}}')"
            )
        )
    with pytest.raises(IntegrityError), engine.begin() as conn:
        _alert(conn, "c0ffee")  # one row per fingerprint
    with pytest.raises(IntegrityError), engine.begin() as conn:
        _alert(conn, "beef", engine_id="99")  # no such engine
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM engines"))
        assert conn.execute(text("SELECT engine_id FROM alerts")).one() == (None,)
        conn.execute(text("DELETE FROM alerts"))
        assert conn.execute(text("SELECT count(*) FROM alert_events")).scalar() == 0
    schema.downgrade(engine, "0008")
    assert not {"alerts", "alert_events"} & set(inspect(engine).get_table_names())
    schema.upgrade(engine)
    assert schema.current_revision(engine) == schema.head_revision()
