from __future__ import annotations

import subprocess
import sys

import pytest

from engine.cli import main


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--batch-size", "0"],
        ["serve", "--batch-size", "many"],
        ["serve", "--precision", "fp4"],
        ["serve", "--model", "huge"],
        ["serve", "--port", "70000"],
        ["serve", "--streams", "1000"],
        ["serve", "--batch-size", "65"],
        ["serve", "--max-queue-delay-ms", "-1"],
        ["serve", "--max-body-bytes", "0"],
        ["serve", "--unknown-flag"],
        [],
    ],
)
def test_bad_input_exits_2_with_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("cplane-engine: error:")


def test_module_entry_point_exits_2_without_a_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "engine", "serve", "--precision", "fp4"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
