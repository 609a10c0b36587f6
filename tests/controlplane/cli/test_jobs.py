"""``cplane jobs``: list, edit (before any server has started: the system jobs are seeded
then), history; bad input exits 2 with one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.cli import Run


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Run:
    monkeypatch.delenv("CP_DATABASE_URL", raising=False)
    monkeypatch.setenv("CP_DATA_DIR", str(tmp_path / "data"))
    run = Run(capsys)
    assert run("db", "upgrade")[0] == 0
    return run


def test_jobs_set_list_and_history(cli: Run) -> None:
    code, out, err = cli("jobs", "set", "retention", "--interval", "10m", "--disabled")
    assert code == 0, err
    assert out.strip() == "retention: every 600 s, disabled"
    code, out, _ = cli("jobs", "--json")
    listing = json.loads(out)
    by_name = {j["name"]: j for j in listing["jobs"]}
    assert set(by_name) == {"retention", "sweep_tuning", "reconcile", "chaos_sweep"}
    assert (by_name["retention"]["interval_s"], by_name["retention"]["enabled"]) == (600, False)
    assert listing["leader"] is None
    code, out, _ = cli("jobs")
    assert code == 0 and "reconcile" in out and "leader: none" in out
    code, out, _ = cli("jobs", "history", "retention", "--json")
    assert code == 0 and json.loads(out) == []


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("jobs", "set", "retention", "--interval", "0.2s"), "below the minimum"),
        (("jobs", "set", "retention", "--interval", "soon"), "not a duration"),
        (("jobs", "set", "retention"), "nothing to change"),
        (("jobs", "set", "nope", "--enabled"), "not found"),
        (("jobs", "history", "nope"), "not found"),
    ],
)
def test_bad_input_exits_2_with_one_line(cli: Run, args: tuple[str, ...], words: str) -> None:
    code, _out, err = cli(*args)
    assert code == 2
    assert err.count("\n") == 1 and words in err
