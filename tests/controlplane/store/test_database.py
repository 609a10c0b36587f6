from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy import text

from controlplane.domain import StoreUnavailableError
from controlplane.settings import Settings
from controlplane.store.database import check_reachable
from controlplane.store.database import make_engine
from controlplane.store.database import make_session_factory
from controlplane.store.database import masked_url


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(Settings(data_dir=tmp_path / "nested" / "dir"))
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    assert (tmp_path / "nested" / "dir" / "controlplane.db").exists()
    engine.dispose()


def test_unreachable_database_names_url_with_password_masked(tmp_path: Path) -> None:
    url = "postgresql+psycopg://cp:hunter2@127.0.0.1:1/cp"
    engine = make_engine(Settings(database_url=url, data_dir=tmp_path))
    with pytest.raises(StoreUnavailableError) as info:
        check_reachable(engine)
    message = str(info.value)
    assert "hunter2" not in message
    assert "cp:***@127.0.0.1:1/cp" in message
    assert "\n" not in message


def test_garbage_url_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailableError):
        make_engine(Settings(database_url="not a url", data_dir=tmp_path))
    assert masked_url("not a url") == "<unparseable database URL>"


def test_both_backends_answer(db_engine: Engine) -> None:
    check_reachable(db_engine)


def test_sqlite_reads_do_not_wait_for_a_writer_but_writes_still_lock(tmp_path: Path) -> None:
    engine = make_engine(Settings(data_dir=tmp_path))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    reads = make_session_factory(engine, read_only=True)
    writes = make_session_factory(engine)
    other = sqlite3.connect(tmp_path / "controlplane.db", timeout=0, isolation_level=None)
    with writes() as writer, writer.begin():
        writer.execute(text("INSERT INTO t VALUES (2)"))  # holds the write lock, uncommitted
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        with reads() as session, session.begin():  # does not wait: its snapshot predates it
            assert session.execute(text("SELECT COUNT(*) FROM t")).scalar() == 1
    with reads() as session, session.begin():  # a read-only session holds no write lock
        session.execute(text("SELECT COUNT(*) FROM t"))
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    other.close()
    engine.dispose()


def test_store_file_wal_shm_and_data_dir_are_private_under_umask_022(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "data"
    old = os.umask(0o022)
    try:
        engine = make_engine(Settings(data_dir=data_dir))
        with engine.begin() as conn:  # WAL mode: the write creates -wal and -shm
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
        with engine.connect() as conn:  # still open, so SQLite keeps both files
            conn.execute(text("SELECT * FROM t")).all()
            db = data_dir / "controlplane.db"
            files = (db, Path(f"{db}-wal"), Path(f"{db}-shm"))
            assert {f.name: stat.S_IMODE(f.stat().st_mode) for f in files} == {
                f.name: 0o600 for f in files
            }
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        engine.dispose()
    finally:
        os.umask(old)
