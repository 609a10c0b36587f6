"""Ids past the key range and Unicode digits on the command line: exit 2 with one line, on
every command that takes an id or an engine reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.cli import Run

BEYOND = str(2**63)


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Run:
    monkeypatch.delenv("CP_DATABASE_URL", raising=False)
    monkeypatch.setenv("CP_DATA_DIR", str(tmp_path / "data"))
    run = Run(capsys)
    assert run("db", "upgrade")[0] == 0
    assert run("engine", "add", "llm-a", "--url", "http://127.0.0.1:9")[0] == 0
    return run


@pytest.mark.parametrize(
    "args",
    [
        ("engine", "show", "³"),
        ("engine", "show", BEYOND),
        ("engine", "apply", "³", "max_batch_size=4"),
        ("engine", "apply", BEYOND, "max_batch_size=4"),
        ("slo", "set", "³", "p99_ms<=300"),
        ("slo", "set", BEYOND, "p99_ms<=300"),
        ("slo", "list", BEYOND),
        ("rollout", "show", BEYOND),
        ("rollout", "approve", BEYOND),
        ("rollout", "rollback", BEYOND),
        ("rollout", "show", "0"),
        ("token", "revoke", BEYOND),
        ("tuning", "show", BEYOND),
        ("tuning", "stop", BEYOND),
        ("tuning", "resume", BEYOND),
        ("chaos", "show", BEYOND),
        ("chaos", "abort", BEYOND),
        ("chaos", "run", "--target", "pid:²", "--fault", "pause", "--duration", "1s"),
    ],
)
def test_out_of_range_ids_and_unicode_digits_are_one_line_and_exit_2(
    cli: Run, args: tuple[str, ...]
) -> None:
    code, _out, err = cli(*args)
    assert code == 2, err
    assert err.startswith("cplane: error:") and err.count("\n") == 1
    assert "Traceback" not in err


def test_an_id_in_range_still_names_the_engine(cli: Run) -> None:
    code, out, _ = cli("engine", "show", "1", "--json")
    assert code == 0 and '"llm-a"' in out
