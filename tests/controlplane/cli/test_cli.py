"""The CLI, in process (fast) and as the installed ``cplane`` script (what users run)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.fixtures.cli import CPLANE
from tests.fixtures.cli import Run
from tests.fixtures.engines import free_port


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Run:
    monkeypatch.delenv("CP_DATABASE_URL", raising=False)
    monkeypatch.setenv("CP_DATA_DIR", str(tmp_path / "data"))
    return Run(capsys)


def test_refuses_an_empty_store_naming_the_fix(cli: Run) -> None:
    code, _out, err = cli("engine", "list")
    assert code == 2
    assert err.count("\n") == 1 and "cplane db upgrade" in err


def test_first_admin_token_and_engines(cli: Run) -> None:
    assert cli("db", "upgrade")[0] == 0
    code, out, _ = cli("db", "current")
    assert code == 0 and "current" in out
    assert cli("user", "create", "root-admin", "--admin")[0] == 0
    code, secret, _ = cli("token", "create", "root-admin")
    assert code == 0 and secret.startswith("cpt_")

    code, out, _ = cli("engine", "add", "llm-a", "--url", "http://127.0.0.1:8000", "--json")
    assert code == 0 and json.loads(out)["name"] == "llm-a"
    code, out, _ = cli("engine", "list", "--json")
    assert [e["name"] for e in json.loads(out)] == ["llm-a"]
    assert cli("engine", "show", "llm-a")[0] == 0
    assert cli("engine", "remove", "llm-a", "--yes")[0] == 0
    code, out, _ = cli("engine", "list", "--json")
    assert json.loads(out) == []


@pytest.mark.parametrize(
    "args",
    [
        ("engine", "add", "x", "--url", "not-a-url"),
        ("engine", "add", "", "--url", "http://127.0.0.1:1"),
        ("engine", "add", "x" * 300, "--url", "http://127.0.0.1:1"),
        ("engine", "show", "missing"),
        ("engine", "frobnicate"),
        ("user", "create", "u", "--role", "god"),
        ("token", "revoke", "999"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli: Run, args: tuple[str, ...]) -> None:
    cli("db", "upgrade")
    code, _out, err = cli(*args)
    assert code == 2
    assert err.startswith("cplane: error:") and err.count("\n") == 1
    assert "Traceback" not in err


def test_duplicate_engine_is_exit_2(cli: Run) -> None:
    cli("db", "upgrade")
    cli("engine", "add", "a", "--url", "http://127.0.0.1:1")
    code, _out, err = cli("engine", "add", "a", "--url", "http://127.0.0.1:2")
    assert code == 2 and "already exists" in err


def test_unreachable_database_masks_the_password(
    cli: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CP_DATABASE_URL", "postgresql+psycopg://cp:hunter2@127.0.0.1:1/cp")
    code, _out, err = cli("engine", "list")
    assert code == 2 and err.count("\n") == 1
    assert "hunter2" not in err and "cp:***@127.0.0.1:1/cp" in err


@pytest.mark.slow
def test_installed_script_serves_docs_and_health(tmp_path: Path) -> None:
    env = {**os.environ, "CP_DATA_DIR": str(tmp_path)}
    env.pop("CP_DATABASE_URL", None)
    bad = subprocess.run([CPLANE, "engine", "nope"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    subprocess.run([CPLANE, "db", "upgrade"], env=env, check=True, capture_output=True)
    port = free_port()
    server = subprocess.Popen(
        [CPLANE, "up", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None, "server exited"
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        assert health.json() == {"status": "ok"}
        assert httpx.get(f"http://127.0.0.1:{port}/docs", timeout=5).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=10)
