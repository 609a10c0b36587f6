"""A trial the guard rolls back for an SLO breach is infeasible, not failed: it is told with
a violated constraint so the sampler learns where the cliff is, and the config can never
win. The guard's breach detection itself is tested against a real engine in the guard's
suite; here the guard's verdict is stubbed so the tuner's side is exact and fast."""

from __future__ import annotations

import threading
from typing import Any

import optuna

from controlplane.domain import Knob
from controlplane.domain import RolloutState
from controlplane.domain import SearchSpace
from controlplane.settings import Settings
from controlplane.store.database import SessionFactory
from tests.tuner.conftest import register
from tests.tuner.conftest import start
from tuner import Measurement
from tuner import Switched
from tuner import Tuner
from tuner import Window
from tuner import opened_storage


class _Engine:
    config: dict[str, Any] = {"max_batch_size": 1}

    def __init__(self, target: Any = None) -> None:
        pass

    def search_space(self) -> SearchSpace:
        return SearchSpace((Knob("max_batch_size", "int", choices=(1, 2, 4), low=1, high=8),))

    def current_config(self) -> dict[str, Any]:
        return dict(_Engine.config)

    def close(self) -> None:
        pass


class _Measurer:
    def measure(self, *, stop: threading.Event | None = None) -> Measurement:
        b = _Engine.config["max_batch_size"]
        w = Window(1.0, 50, 10.0 * b, 10.0 * b, 0.05, 0.1, {"p99": 0.1}, 0.0)
        return Measurement((w, w, w), stable=True, used=3)

    def baseline_measured(self, m: Measurement) -> tuple[dict[str, Any], str | None]:
        return {}, None

    def resume(self, attrs: Any) -> None:
        return None

    def bake_load(self) -> None:
        return None

    def close(self) -> None:
        return None


class _StubbedGuard(Tuner):
    """Batch 4 breaches the SLO during its bake; other switches commit."""

    def _measurer(self, ctx: Any) -> Any:
        return _Measurer()

    def _switch(
        self, ctx: Any, params: dict[str, Any], *, reason: str = "trial", stop: Any = None
    ) -> Switched:
        if params == _Engine.config:
            return Switched()
        if params.get("max_batch_size") == 4:
            verdict = {
                "outcome": "breach",
                "slo": "p99_ms<=300",
                "quantile_s": 0.9,
                "summary": "p99_ms<=300 breached: 40 of 60 requests violated",
            }
            return Switched(41, RolloutState.rolled_back, verdict)
        _Engine.config = dict(params)
        return Switched(42, RolloutState.committed, {"outcome": "pass"})


def test_a_breaching_trial_is_infeasible_and_never_wins(
    sessions: SessionFactory, settings: Settings, url: str
) -> None:
    _Engine.config = {"max_batch_size": 1}
    register(sessions, "http://127.0.0.1:9", None, "p99_ms<=300")
    row = start(sessions, settings, _Engine(), trials=3, sampler="random", apply_best=False)
    with opened_storage(url) as storage:
        study = optuna.create_study(storage=storage, study_name=row.study_name)
        study.enqueue_trial({"max_batch_size": 1}, user_attrs={"kind": "baseline"})
        study.enqueue_trial({"max_batch_size": 4})
        study.enqueue_trial({"max_batch_size": 2})
    factory: Any = _Engine
    result = _StubbedGuard(
        session_factory=sessions, storage_url=url, settings=settings, adapter_factory=factory
    ).run(row.id)

    assert [t["outcome"] for t in result["trials"]] == ["feasible", "breach", "feasible"]
    assert "breached" in result["trials"][1]["error"]
    with opened_storage(url) as storage:
        told = optuna.load_study(study_name=row.study_name, storage=storage).trials
    assert told[1].state == optuna.trial.TrialState.COMPLETE
    # (0.9 s observed - 0.3 s * 0.9) / 0.3 s: violated, by how much is kept for the sampler.
    assert told[1].constraints["p99"] > 2.0
    assert all(v <= 0 for v in told[2].constraints.values())
    # Batch 4 measured nothing better than a breach; batch 2 is the best feasible config.
    assert result["best"]["params"] == {"max_batch_size": 2}
    # Nothing to apply was asked for: re-measured, and the engine is back on the default.
    assert result["remeasured"]["best"]["mean"] == 20.0
    assert _Engine.config == {"max_batch_size": 1} and "applied" not in result


class _ManualEngineGuard(_StubbedGuard):
    """As above, and on a manual-approval engine a ``tuner`` change waits for approval."""

    calls: list[tuple[int, str]] = []

    def _switch(
        self, ctx: Any, params: dict[str, Any], *, reason: str = "trial", stop: Any = None
    ) -> Switched:
        _ManualEngineGuard.calls.append((params["max_batch_size"], reason))
        if reason == "tuner":
            return Switched(43, RolloutState.pending, {"outcome": "awaiting_approval"})
        return super()._switch(ctx, params, reason=reason)


def test_on_a_manual_engine_the_best_waits_for_approval_and_the_engine_ends_on_default(
    sessions: SessionFactory, settings: Settings, url: str
) -> None:
    _Engine.config = {"max_batch_size": 1}
    _ManualEngineGuard.calls = []
    register(sessions, "http://127.0.0.1:9", None, "p99_ms<=300", approval="manual")
    row = start(sessions, settings, _Engine(), trials=2, sampler="random")
    with opened_storage(url) as storage:
        study = optuna.create_study(storage=storage, study_name=row.study_name)
        study.enqueue_trial({"max_batch_size": 1}, user_attrs={"kind": "baseline"})
        study.enqueue_trial({"max_batch_size": 2})
    factory: Any = _Engine
    result = _ManualEngineGuard(
        session_factory=sessions, storage_url=url, settings=settings, adapter_factory=factory
    ).run(row.id)

    assert result["best"]["params"] == {"max_batch_size": 2}
    # trial 1, then best (already on it), default, and the proposal of the best.
    assert _ManualEngineGuard.calls == [(1, "trial"), (2, "trial"), (2, "trial"), (1, "trial"),
                                        (2, "tuner")]  # fmt: skip
    assert result["applied"] == {
        "rollout_id": 43, "state": "pending", "awaiting_approval": True, "summary": None
    }  # fmt: skip
    assert _Engine.config == {"max_batch_size": 1}
    assert result["improvement"] == 2.0
