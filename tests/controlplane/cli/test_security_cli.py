"""Secrets on disk and in output through the CLI: private files whatever the umask, key
rotation, user administration, and URLs shown without their credentials."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.settings import Settings
from controlplane.store import engines
from controlplane.store.database import make_engine
from controlplane.store.database import make_session_factory
from controlplane.store.database import unit_of_work
from tests.fixtures.cli import Run


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, data_dir: Path
) -> Run:
    monkeypatch.delenv("CP_DATABASE_URL", raising=False)
    monkeypatch.delenv("CP_SECRET_KEY", raising=False)
    monkeypatch.setenv("CP_DATA_DIR", str(data_dir))
    run = Run(capsys)
    assert run("db", "upgrade")[0] == 0
    assert run("user", "create", "root", "--admin")[0] == 0
    return run


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _tokens(data_dir: Path) -> dict[str, str | None]:
    engine = make_engine(Settings(data_dir=data_dir))
    try:
        with unit_of_work(make_session_factory(engine)) as s:
            return {r.name: engines.engine_target(r).admin_token for r in engines.list_engines(s)}
    finally:
        engine.dispose()


def test_store_key_and_token_files_are_private_under_umask_022(
    loose_umask: None, cli: Run, data_dir: Path, tmp_path: Path
) -> None:
    code, _, err = cli("engine", "add", "e1", "--url", "http://127.0.0.1:1", "--admin-token", "t")
    assert code == 0, err
    out_file = tmp_path / "tokens" / "admin.token"
    assert cli("token", "create", "root", "--output", str(out_file))[0] == 0
    assert out_file.read_text().startswith("cpt_")
    db = data_dir / "controlplane.db"
    files = [db, data_dir / "secret.key", out_file]
    files += [p for p in (Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]
    assert {str(p): _mode(p) for p in files} == {str(p): 0o600 for p in files}
    assert {_mode(data_dir), _mode(out_file.parent)} == {0o700}


def test_an_existing_loose_store_is_tightened(loose_umask: None, cli: Run, data_dir: Path) -> None:
    db = data_dir / "controlplane.db"
    os.chmod(db, 0o644)
    os.chmod(data_dir, 0o755)
    assert cli("db", "upgrade")[0] == 0
    assert (_mode(db), _mode(data_dir)) == (0o600, 0o700)


def test_rotate_key_reencrypts_every_token_under_a_new_key(cli: Run, data_dir: Path) -> None:
    for name, token in (("e1", "tok-one"), ("e2", "tok-two")):
        assert (
            cli("engine", "add", name, "--url", "http://127.0.0.1:1", "--admin-token", token)[0]
            == 0
        )
    cli("engine", "add", "e3", "--url", "http://127.0.0.1:1")
    before = (data_dir / "secret.key").read_text()
    code, out, err = cli("db", "rotate-key")
    assert code == 0, err
    assert "re-encrypted 2 engine admin token(s)" in out
    after = (data_dir / "secret.key").read_text()
    assert after != before and len(after.split()) == 1
    assert _mode(data_dir / "secret.key") == 0o600
    assert _tokens(data_dir) == {"e1": "tok-one", "e2": "tok-two", "e3": None}
    code, out, _ = cli("engine", "list", "--json")
    assert "tok-one" not in out


def test_rotate_key_with_one_env_key_asks_for_the_new_one_first(
    cli: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography.fernet import Fernet

    monkeypatch.setenv("CP_SECRET_KEY", Fernet.generate_key().decode())
    code, _, err = cli("db", "rotate-key")
    assert code == 2 and "put a new key first" in err and err.count("\n") == 1


def test_user_disable_enable_and_role_are_audited(cli: Run) -> None:
    assert cli("user", "create", "ann")[0] == 0
    assert cli("user", "role", "ann", "operator")[0] == 0
    assert cli("user", "disable", "ann")[0] == 0
    code, out, _ = cli("user", "list", "--json")
    ann = next(u for u in json.loads(out) if u["name"] == "ann")
    assert (ann["role"], ann["disabled"]) == ("operator", True)
    assert cli("user", "enable", "ann")[0] == 0
    code, err_out, err = cli("user", "disable", "root")
    assert code == 2 and "no enabled admin" in err
    code, _, err = cli("user", "role", "ann", "god")
    assert code == 2


def test_engine_lines_never_show_url_credentials(cli: Run) -> None:
    url = "http://scott:tiger-pw@127.0.0.1:1"
    code, out, _ = cli("engine", "add", "e1", "--url", url)
    assert code == 0 and "tiger-pw" not in out and "***@127.0.0.1" in out
    for args in (("engine", "list"), ("engine", "show", "e1", "--json")):
        code, out, _ = cli(*args)
        assert code == 0 and "tiger-pw" not in out


def test_http_client_libraries_log_warnings_only_by_default(cli: Run) -> None:
    import logging

    assert cli("db", "current")[0] == 0
    levels = {name: logging.getLogger(name).level for name in ("httpx", "httpcore")}
    assert levels == {"httpx": logging.WARNING, "httpcore": logging.WARNING}
