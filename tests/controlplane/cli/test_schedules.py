"""``cplane schedule`` and ``cplane engine watch`` against a real engine and store: the
commands round trip, and every kind of bad input is exit 2 with one line, creating nothing."""

from __future__ import annotations

import json
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import pytest

from tests.fixtures.cli import Run
from tests.fixtures.engines import RunningEngine

TUNE = "objective=goodput,slo=p99_ms<=3000,load=rate=40,trials=5,knob=max_batch_size"


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    reference_engine: RunningEngine,
) -> Run:
    monkeypatch.delenv("CP_DATABASE_URL", raising=False)
    monkeypatch.setenv("CP_DATA_DIR", str(tmp_path / "data"))
    run = Run(capsys)
    assert run("db", "upgrade")[0] == 0
    url, token = reference_engine.url, reference_engine.admin_token
    assert run("engine", "add", "ref", "--url", url, "--admin-token", token)[0] == 0
    assert run("slo", "set", "ref", "p99_s<=10")[0] == 0
    return run


def test_schedule_commands_round_trip(cli: Run) -> None:
    code, out, err = cli(
        "schedule", "add", "ref", "--cron", "0 3 * * *", "--tz", "Asia/Shanghai", "--tune", TUNE
    )
    assert code == 0, err
    assert out.startswith("schedule 1 (ref-1) on ref: 0 3 * * * Asia/Shanghai; next at ")
    assert "03:00 CST" in out
    code, out, _ = cli("schedule", "list", "--json")
    (listed,) = json.loads(out)
    assert listed["spec"]["slo"] == ["p99_ms<=3000"] and listed["spec"]["trials"] == 5
    code, out, _ = cli("schedule", "show", "ref-1")
    shown = json.loads(out)
    assert len(shown["next_fires"]) == 5 and shown["last_runs"] == []
    assert all(t.endswith("+08:00") and "T03:00:00" in t for t in shown["next_fires"])
    assert cli("schedule", "pause", "ref-1")[1].strip() == "schedule 1 (ref-1): paused"
    assert "resumed; next at" in cli("schedule", "resume", "1")[1]
    assert cli("schedule", "history", "ref-1")[0] == 0
    assert cli("schedule", "remove", "ref-1")[1].strip() == "schedule 1 (ref-1): removed"
    assert json.loads(cli("schedule", "list", "--json")[1]) == []


def test_run_now_outside_the_window_is_a_skip_with_its_reason(cli: Run) -> None:
    later = datetime.now(UTC) + timedelta(hours=3)
    window = f"{later:%H}:00-{later + timedelta(hours=1):%H}:00"
    args = ("schedule", "add", "ref", "--cron", "0 3 * * *", "--tune", TUNE, "--window", window)
    assert cli(*args)[0] == 0
    code, out, _ = cli("schedule", "run-now", "ref-1")
    assert code == 1 and out.startswith("schedule 1: skipped (outside_window): ")
    code, out, _ = cli("schedule", "history", "ref-1", "--json")
    (run,) = json.loads(out)
    assert run["state"] == "skipped" and run["reason"] == "outside_window"
    assert "outside the maintenance window" in cli("schedule", "history", "ref-1")[1]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--cron", "0 3 * *"), "cron"),
        (("--cron", "0 3 * * funday"), "does not parse"),
        (("--cron", "*/5 * * * *"), "more often than every 15 min"),
        (("--cron", "0 3 * * *", "--tz", "Mars/Olympus"), "unknown timezone"),
        (("--cron", "0 3 * * *", "--tune", "load=rate=-1"), "load"),
        (("--cron", "0 3 * * *", "--tune", "colour=blue"), "cannot parse --tune"),
        (("--cron", "0 3 * * *", "--tune", "trials=0"), "trials"),
        (("--cron", "0 3 * * *", "--tune", "knob=warp_drive"), "warp_drive"),
        (("--cron", "0 3 * * *", "--window", "noon"), "window"),
        (("--cron", "0 3 * * *", "--min-rps", "5"), "live load only"),
    ],
)
def test_bad_input_is_exit_2_with_one_line_and_creates_nothing(
    cli: Run, args: tuple[str, ...], says: str
) -> None:
    code, out, err = cli("schedule", "add", "ref", *args)
    assert code == 2, (out, err)
    assert err.startswith("cplane: error:") and err.count("\n") == 1 and says in err, err
    assert json.loads(cli("schedule", "list", "--json")[1]) == []


def test_unknown_engine_and_bad_spec_files(cli: Run, tmp_path: Path) -> None:
    code, _, err = cli("schedule", "add", "nope", "--cron", "0 3 * * *")
    assert code == 2 and "engine 'nope' not found" in err and err.count("\n") == 1
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = cli("schedule", "add", "ref", "--cron", "0 3 * * *", "--spec", str(bad))
    assert code == 2 and "not valid JSON" in err
    refused = tmp_path / "refused.json"
    refused.write_text(json.dumps({"load": "rate=40", "objective": "fastest"}))
    code, _, err = cli("schedule", "add", "ref", "--cron", "0 3 * * *", "--spec", str(refused))
    assert code == 2 and "objective" in err and err.count("\n") == 1
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"load": "rate=40", "trials": 3}))
    assert cli("schedule", "add", "ref", "--cron", "0 3 * * *", "--spec", str(good))[0] == 0
    assert cli("schedule", "show", "nope")[0] == 2


def test_engine_watch(cli: Run) -> None:
    code, out, _ = cli("engine", "watch", "ref")
    assert code == 0 and out.startswith("ref: health watch on: a check every 15 s, 3 failures")
    code, out, _ = cli("engine", "watch", "ref", "--interval", "5s", "--failures", "2")
    assert code == 0 and "a check every 5 s, 2 failures" in out
    assert "overrides: failures=2, interval_s=5.0" in out
    code, out, _ = cli("engine", "watch", "ref", "--window", "1h", "--json")
    assert json.loads(out)["window_s"] == 3600.0
    assert "health watch off" in cli("engine", "watch", "ref", "--disable")[1]
    code, out, _ = cli("engine", "watch", "ref", "--default")
    assert "a check every 15 s, 3 failures" in out and "overrides" not in out
    for bad in (("--interval", "soon"), ("--failures", "0"), ("--interval", "10ms")):
        code, _, err = cli("engine", "watch", "ref", *bad)
        assert code == 2 and err.startswith("cplane: error:") and err.count("\n") == 1, err
