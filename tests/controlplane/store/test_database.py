from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy import text

from controlplane.domain import StoreUnavailableError
from controlplane.settings import Settings
from controlplane.store.database import check_reachable
from controlplane.store.database import make_engine
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
