"""Migrations are code: one head, upgrade from empty, down to base and back up with rows
present, models matching the DDL, and peaceful coexistence with Optuna's own Alembic history,
on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy import inspect
from sqlalchemy import text

from controlplane.api.app import create_app
from controlplane.domain import SchemaOutdatedError
from controlplane.settings import Settings
from controlplane.store import schema
from controlplane.store.base import Base
from controlplane.store.database import make_engine
from controlplane.store.database import secret_box
from tests.fixtures.db import DatabaseFactory


@pytest.fixture
def empty_engine(database_factory: DatabaseFactory, tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(Settings(database_url=database_factory.new_url(), data_dir=tmp_path))
    yield engine
    engine.dispose()


def test_single_head() -> None:
    heads = ScriptDirectory.from_config(schema.alembic_config()).get_heads()
    assert len(heads) == 1


def test_upgrade_from_empty_creates_every_table(empty_engine: Engine) -> None:
    assert schema.current_revision(empty_engine) is None
    schema.upgrade(empty_engine)
    assert schema.current_revision(empty_engine) == schema.head_revision()
    tables = set(inspect(empty_engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert schema.VERSION_TABLE in tables
    assert "alembic_version" not in tables


def test_models_match_the_migrated_schema(empty_engine: Engine) -> None:
    schema.upgrade(empty_engine)
    with empty_engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"version_table": schema.VERSION_TABLE, "compare_type": True}
        )
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_downgrade_to_base_and_back_with_rows_present(empty_engine: Engine) -> None:
    schema.upgrade(empty_engine)
    with empty_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO engines (name, kind, url, approval_mode, description, labels, "
                "created, updated) VALUES ('e', 'reference', 'http://x', 'auto', '', '{}', "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(text("INSERT INTO series (source, metric, labels) VALUES ('e', 'm', '{}')"))
        conn.execute(text("INSERT INTO samples (series_id, ts, value) VALUES (1, 1.0, 2.0)"))
    schema.downgrade(empty_engine, "base")
    assert set(inspect(empty_engine).get_table_names()) <= {schema.VERSION_TABLE}
    schema.upgrade(empty_engine)
    assert schema.current_revision(empty_engine) == schema.head_revision()


def test_sql_preview_runs_nothing(empty_engine: Engine) -> None:
    sql = schema.upgrade_sql(empty_engine)
    assert "CREATE TABLE engines" in sql
    assert schema.current_revision(empty_engine) is None


def test_optuna_keeps_its_own_version_table(empty_engine: Engine) -> None:
    schema.upgrade(empty_engine)
    url = empty_engine.url.render_as_string(hide_password=False)
    storage = optuna.storages.RDBStorage(url)
    optuna.create_study(study_name="s", storage=storage)
    schema.upgrade(empty_engine)  # a second upgrade must not touch Optuna's history
    with empty_engine.connect() as conn:
        ours = conn.execute(text(f"SELECT version_num FROM {schema.VERSION_TABLE}")).scalar()
        theirs = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert ours == schema.head_revision()
    assert theirs is not None and theirs != ours
    assert optuna.load_study(study_name="s", storage=storage).study_name == "s"
    storage.remove_session()
    storage.engine.dispose()


def test_app_refuses_an_outdated_schema(empty_engine: Engine, tmp_path: Path) -> None:
    url = empty_engine.url.render_as_string(hide_password=False)
    with pytest.raises(SchemaOutdatedError, match="cplane db upgrade"):
        create_app(Settings(database_url=url, data_dir=tmp_path), db_engine=empty_engine)


def test_series_ids_migration_moves_samples_and_rollups_both_ways(empty_engine: Engine) -> None:
    schema.upgrade(empty_engine, "0004")
    wide = [
        (1.0, "e1", "m", '{"le":"0.5"}', 2.0),
        (2.0, "e1", "m", '{"le":"0.5"}', 3.0),
        (2.0, "e1", "m", '{"le":"+Inf"}', 4.0),
        (1.0, "e2", "m", "{}", 5.0),
    ]
    with empty_engine.begin() as conn:
        for row in wide:
            conn.execute(
                text(
                    "INSERT INTO samples (ts, source, metric, labels, value) "
                    "VALUES (:ts, :s, :m, :l, :v)"
                ),
                dict(zip(("ts", "s", "m", "l", "v"), row, strict=True)),
            )
        conn.execute(
            text(
                'INSERT INTO sample_rollups (ts, source, metric, labels, last_ts, last, "min", '
                "\"max\", \"sum\", \"count\") VALUES (0.0, 'e3', 'g', '{}', 30.0, 1.0, 0.5, "
                "2.0, 3.5, 3)"
            )
        )
    schema.upgrade(empty_engine, "0005")
    with empty_engine.connect() as conn:
        moved = conn.execute(
            text(
                "SELECT n.ts, s.source, s.metric, s.labels, n.value FROM samples n "
                "JOIN series s ON s.id = n.series_id ORDER BY s.source, s.labels, n.ts"
            )
        ).all()
        rollup = conn.execute(
            text(
                'SELECT s.source, r.ts, r.last, r."count" FROM sample_rollups r '
                "JOIN series s ON s.id = r.series_id"
            )
        ).one()
        assert conn.execute(text("SELECT COUNT(*) FROM series")).scalar() == 4
    assert sorted(map(tuple, moved)) == sorted(wide)
    assert tuple(rollup) == ("e3", 0.0, 1.0, 3)
    schema.downgrade(empty_engine, "0004")
    with empty_engine.connect() as conn:
        back = conn.execute(text("SELECT ts, source, metric, labels, value FROM samples")).all()
        assert conn.execute(text("SELECT source FROM sample_rollups")).scalar() == "e3"
    assert sorted(map(tuple, back)) == sorted(wide)
    assert "series" not in inspect(empty_engine).get_table_names()


def test_engine_tokens_migration_encrypts_and_decrypts_both_ways(empty_engine: Engine) -> None:
    schema.upgrade(empty_engine, "0007")
    insert = text(
        "INSERT INTO engines (name, kind, url, admin_token, approval_mode, description, labels, "
        "created, updated) VALUES (:n, 'reference', 'http://x', :t, 'auto', '', '{}', "
        "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
    )
    with empty_engine.begin() as conn:
        conn.execute(insert, {"n": "a", "t": "plain-token-a"})
        conn.execute(insert, {"n": "b", "t": None})
    schema.upgrade(empty_engine, "0008")
    columns = {c["name"] for c in inspect(empty_engine).get_columns("engines")}
    assert "admin_token_enc" in columns and "admin_token" not in columns
    with empty_engine.connect() as conn:
        sealed = dict(conn.execute(text("SELECT name, admin_token_enc FROM engines")).all())
    assert sealed["b"] is None and "plain-token-a" not in sealed["a"]
    assert secret_box(empty_engine).decrypt(sealed["a"]) == "plain-token-a"
    schema.downgrade(empty_engine, "0007")
    with empty_engine.connect() as conn:
        plain = dict(conn.execute(text("SELECT name, admin_token FROM engines")).all())
    assert plain == {"a": "plain-token-a", "b": None}
