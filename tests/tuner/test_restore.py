"""A run that does not finish leaves the engine as it found it: a stop after a committed
trial, and an orphaned run a sweep finds with its engine on a trial's config, both put the
engine back on its pre-study config through the guard (a rollout, judged like any other).
Real reference engine, SQLite only."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import update

from controlplane.domain import EngineTarget
from controlplane.domain import TuningRunState
from controlplane.engines import adapter_for
from controlplane.settings import Settings
from controlplane.store import rollouts
from controlplane.store import tuning
from controlplane.store.base import utcnow
from controlplane.store.database import SessionFactory
from controlplane.store.database import unit_of_work
from controlplane.store.models import TuningRunRow
from tests.fixtures.db import SQLITE_ONLY
from tests.fixtures.engines import RunningEngine
from tests.tuner.conftest import running_engine_config
from tests.tuner.conftest import start_on
from tuner import Tuner
from tuner import TuningEvent
from tuner import sweep_orphaned_runs

pytestmark = [SQLITE_ONLY, pytest.mark.slow]


def test_a_stop_after_a_committed_trial_restores_the_pre_study_config(
    sessions: SessionFactory, settings: Settings, url: str, serial_engine: RunningEngine
) -> None:
    row = start_on(
        sessions, settings, serial_engine, load="concurrency=4", trials=5,
        knobs=["max_batch_size"], sampler="grid", seed=3,
    )  # fmt: skip
    stop = threading.Event()

    def on_event(event: TuningEvent) -> None:
        if event.trial is not None and event.trial.kind != "baseline":
            assert running_engine_config(serial_engine)["max_batch_size"] != 1
            stop.set()

    tuner = Tuner(session_factory=sessions, storage_url=url, settings=settings, on_event=on_event)
    result = tuner.run(row.id, stop=stop)
    assert result["restored"]["restored"] is True, result
    assert "back on its pre-study config" in result["note"]
    assert running_engine_config(serial_engine)["max_batch_size"] == 1
    with sessions() as s:
        assert tuning.get_run(s, row.id).state == TuningRunState.stopped
        restore = rollouts.get_rollout(s, result["restored"]["rollout_id"])
        assert restore.state == "committed" and restore.actor == f"tuner:run-{row.id}"


def test_a_sweep_restores_the_engine_an_orphaned_run_left_on_a_trial_config(
    sessions: SessionFactory, settings: Settings, url: str, serial_engine: RunningEngine
) -> None:
    row = start_on(
        sessions, settings, serial_engine, load="concurrency=4", trials=5, knobs=["max_batch_size"]
    )
    # What a killed process leaves: the run "running" with a stale lease, and the engine on
    # the config of the trial it was measuring.
    with unit_of_work(sessions) as s:
        tuning.move(s, tuning.get_run(s, row.id), TuningRunState.running, actor="t")
        s.execute(
            update(TuningRunRow)
            .where(TuningRunRow.id == row.id)
            .values(updated=utcnow() - timedelta(minutes=5))
        )
    target = EngineTarget(
        "ref", "reference", serial_engine.url, admin_token=serial_engine.admin_token
    )
    adapter = adapter_for(target)
    try:
        adapter.apply({"max_batch_size": 8})
    finally:
        adapter.close()
    tuner = Tuner(session_factory=sessions, storage_url=url, settings=settings)
    swept = sweep_orphaned_runs(sessions, url=url, stale_after_s=2.0, tuner=tuner)
    assert swept == [row.id]
    assert running_engine_config(serial_engine)["max_batch_size"] == 1
    with sessions() as s:
        run = tuning.get_run(s, row.id)
        assert run.state == TuningRunState.interrupted
        assert run.result is not None and run.result["restored"]["restored"] is True
