"""The command line's refusals for canaries and supervised engines: exit 2, one line, and
nothing started or changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.cli import Run
from tests.fixtures.engines import ENGINE_BIN
from tests.fixtures.engines import RunningEngine


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Run:
    monkeypatch.delenv("CP_DATABASE_URL", raising=False)
    monkeypatch.setenv("CP_DATA_DIR", str(tmp_path / "data"))
    return Run(capsys)


def test_bad_canary_plans_exit_2(cli: Run, reference_engine: RunningEngine) -> None:
    cli("db", "upgrade")
    url, token = reference_engine.url, reference_engine.admin_token
    assert cli("engine", "add", "ref", "--url", url, "--admin-token", token)[0] == 0
    assert cli("slo", "set", "ref", "p99_s<=10")[0] == 0
    for plan, reason in [
        ("10%:1m,5%:1m", "shares must rise"),
        ("1%:soon", "is not <percent>%:<duration>"),
        ("1%:30m", "no replicas behind a proxy"),  # a reference engine has one process
    ]:
        code, out, err = cli("engine", "apply", "ref", "max_batch_size=2", "--canary", plan)
        assert code == 2, (plan, out, err)
        assert reason in err and len(err.strip().splitlines()) == 1, err
    code, out, _ = cli("rollout", "list", "--json")
    assert code == 0 and out.strip() == "[]"


def test_supervise_refuses_a_flag_the_preset_does_not_know(cli: Run, tmp_path: Path) -> None:
    code, _out, err = cli(
        "engine", "supervise", "x", "--token", "t" * 20, "--workdir", str(tmp_path / "w"),
        "--", ENGINE_BIN, "serve", "--bogus", "1",
    )  # fmt: skip
    assert code == 2 and "--bogus is not a flag the reference preset knows" in err
    assert len(err.strip().splitlines()) == 1
