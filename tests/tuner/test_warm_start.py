"""Warm start from history: a new study on an engine tuned before measures the earlier
runs' best configs right after the baseline, says so, and skips what the space cannot hold
or the baseline already is. The guard and the measurement are stubbed as in test_breach:
the history lookup and the enqueueing are what is tested here."""

from __future__ import annotations

from typing import Any

from controlplane.domain import TuningRunState
from controlplane.settings import Settings
from controlplane.store import tuning
from controlplane.store.database import SessionFactory
from controlplane.store.database import unit_of_work
from tests.tuner.conftest import register
from tests.tuner.conftest import start
from tests.tuner.test_breach import _Engine
from tests.tuner.test_breach import _StubbedGuard
from tuner import TuningEvent


def _finished_run(sessions: SessionFactory, engine_id: int, name: str, best: Any) -> None:
    with unit_of_work(sessions) as s:
        row = tuning.create_run(
            s, engine_id=engine_id, study_name=name, objective="goodput", spec={}, actor="t"
        )
        tuning.move(s, row, TuningRunState.running, actor="t")
        tuning.move(s, row, TuningRunState.done, actor="t", result={"best": best})


def test_a_new_study_starts_with_the_previous_best_configs(
    sessions: SessionFactory, settings: Settings, url: str
) -> None:
    _Engine.config = {"max_batch_size": 1}
    engine_id = register(sessions, "http://127.0.0.1:9", None, "p99_ms<=300")
    _finished_run(sessions, engine_id, "old-1", {"params": {"max_batch_size": 2}})
    _finished_run(sessions, engine_id, "old-2", {"params": {"max_batch_size": 99}})  # off grid
    _finished_run(sessions, engine_id, "old-3", {"params": {"max_batch_size": 1}})  # default
    _finished_run(sessions, engine_id, "old-4", None)  # found nothing
    row = start(sessions, settings, _Engine(), trials=3, sampler="random", apply_best=False)
    events: list[TuningEvent] = []
    factory: Any = _Engine
    result = _StubbedGuard(
        session_factory=sessions, storage_url=url, settings=settings,
        adapter_factory=factory, on_event=events.append,
    ).run(row.id)  # fmt: skip
    assert result["warm_start"] == [{"max_batch_size": 2}]
    kinds = [(t["kind"], t["params"]) for t in result["trials"]]
    assert kinds[:2] == [("baseline", {"max_batch_size": 1}), ("warm", {"max_batch_size": 2})]
    assert any("warm start" in e.message for e in events)


def test_no_history_no_warm_start(sessions: SessionFactory, settings: Settings, url: str) -> None:
    _Engine.config = {"max_batch_size": 1}
    register(sessions, "http://127.0.0.1:9", None, "p99_ms<=300")
    row = start(sessions, settings, _Engine(), trials=2, sampler="random", apply_best=False)
    factory: Any = _Engine
    result = _StubbedGuard(
        session_factory=sessions, storage_url=url, settings=settings, adapter_factory=factory
    ).run(row.id)
    assert "warm_start" not in result
    assert result["trials"][0]["kind"] == "baseline"
