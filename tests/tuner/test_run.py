"""A whole tuning run against a real engine: from a deliberately poor default it finds a
config with clearly higher goodput and applies it through the guard, although the engine
fails in the middle of one trial."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import optuna

from controlplane.domain import EngineTarget
from controlplane.domain import EngineUnreachableError
from controlplane.engines import adapter_for
from controlplane.settings import Settings
from controlplane.store import rollouts
from controlplane.store import tuning
from controlplane.store.database import SessionFactory
from tests.fixtures.db import SQLITE_ONLY
from tests.fixtures.engines import RunningEngine
from tests.tuner.conftest import running_engine_config
from tests.tuner.conftest import start_on
from tuner import Tuner
from tuner import TuningEvent
from tuner import list_trials

pytestmark = SQLITE_ONLY


class _CrashingOnce:
    """The real adapter, except that the engine "crashes" on the first config switch: the
    apply raises exactly as for a dead engine, once. (Killing the engine process for real
    and restarting it on the same port is racy in CI; the guard's path is the same.)"""

    crashed = 0

    def __init__(self, target: EngineTarget) -> None:
        self._real = adapter_for(target)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def apply(self, changes: Any) -> Any:
        if "max_batch_size" in changes and _CrashingOnce.crashed == 0:
            _CrashingOnce.crashed += 1
            raise EngineUnreachableError("engine 'ref' did not answer: connection reset")
        return self._real.apply(changes)


def test_tuning_from_a_poor_default_finds_and_applies_a_better_config(
    sessions: SessionFactory, settings: Settings, url: str, poor_engine: RunningEngine
) -> None:
    row = start_on(
        sessions, settings, poor_engine,
        objective="goodput", slo=["p99_ms<=2000"], load="concurrency=24,shapes=16x12",
        trials=4, knobs=["max_batch_size"], seed=2,
    )  # fmt: skip
    events: list[TuningEvent] = []
    started = time.monotonic()
    _CrashingOnce.crashed = 0
    factory: Any = _CrashingOnce
    result = Tuner(
        session_factory=sessions,
        storage_url=url,
        settings=settings,
        adapter_factory=factory,
        on_event=events.append,
    ).run(row.id)
    took = time.monotonic() - started
    print(f"tuning run took {took:.1f} s: {result}")

    # Trial 1 (the first config switch after the baseline) met a crashed engine: failed,
    # engine back on its last known good config, and the study went on.
    assert [t["outcome"] for t in result["trials"]][1] == "failed"
    assert "did not answer" in result["trials"][1]["error"]
    best = result["best"]["params"]
    assert best["max_batch_size"] > 1
    assert result["improvement"] > 1.2, result["remeasured"]
    applied = result["applied"]
    assert applied["state"] == "committed"
    assert running_engine_config(poor_engine)["max_batch_size"] == best["max_batch_size"]
    with sessions() as s:
        run = tuning.get_run(s, row.id)
        assert run.state == "done" and run.result is not None
        final = rollouts.get_rollout(s, applied["rollout_id"])
        assert final.reason == "tuner" and final.evidence["verdict"]["outcome"] == "pass"
    # The study is an ordinary Optuna study in the store: optuna.load_study opens it.
    study = optuna.load_study(study_name=row.study_name, storage=url)
    assert len(study.trials) == 4
    assert study.trials[0].user_attrs["kind"] == "baseline"
    assert study.trials[0].params == {"max_batch_size": 1}
    trials = list_trials(url, row.study_name)
    assert [t.state for t in trials] == ["complete", "fail", "complete", "complete"]
    assert all(t.feasible is not None for t in trials if t.state == "complete")
    assert Path(result["report"]).read_text().count("plotly") > 0
    assert [e.kind for e in events].count("trial") == 4
