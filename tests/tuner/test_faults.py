"""Faults: a control plane that died mid-run, stop / resume, a busy engine. (An engine failing
mid-trial is part of the end-to-end run in test_run.py, which has a real engine anyway.)"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import optuna
import pytest
from sqlalchemy import update

from controlplane.settings import Settings
from controlplane.store import tuning
from controlplane.store.base import utcnow
from controlplane.store.database import SessionFactory
from controlplane.store.database import unit_of_work
from controlplane.store.models import TuningRunRow
from tests.tuner.conftest import register
from tests.tuner.conftest import start
from tuner import opened_storage
from tuner import request_stop
from tuner import resume_run
from tuner import sweep_orphaned_runs


class _Offline:
    """An adapter for an engine nobody needs to reach (the run never gets that far)."""

    def search_space(self) -> Any:
        from controlplane.domain import Knob
        from controlplane.domain import SearchSpace

        return SearchSpace((Knob("max_batch_size", "int", choices=(1, 2, 4), low=1, high=64),))

    def current_config(self) -> dict[str, Any]:
        return {"max_batch_size": 1}

    def close(self) -> None:
        pass


def test_running_trials_of_a_dead_process_are_failed_on_restart(
    sessions: SessionFactory, settings: Settings, url: str
) -> None:
    register(sessions, "http://127.0.0.1:9", None, "p99_s<=1")
    row = start(sessions, settings, _Offline(), trials=5, seed=1)
    # A process took the run and asked for two trials, then died without telling either.
    with unit_of_work(sessions) as s:
        tuning.move(s, tuning.get_run(s, row.id), "running", actor="t", expect=("pending",))
    dist: dict[str, optuna.distributions.BaseDistribution] = {
        "max_batch_size": optuna.distributions.CategoricalDistribution((1, 2, 4))
    }
    with opened_storage(url) as opened:
        study = optuna.create_study(storage=opened, study_name=row.study_name)
        done = study.ask(dist)
        study.tell(done, 1.0)
        orphans = [study.ask(dist), study.ask(dist)]
    # Its lease is still fresh: nothing is swept.
    assert sweep_orphaned_runs(sessions, url=url, stale_after_s=30) == []
    with unit_of_work(sessions) as s:
        s.execute(
            update(TuningRunRow)
            .where(TuningRunRow.id == row.id)
            .values(updated=utcnow() - timedelta(seconds=60))
        )
    assert sweep_orphaned_runs(sessions, url=url, stale_after_s=30) == [row.id]
    with opened_storage(url) as opened:
        trials = optuna.load_study(study_name=row.study_name, storage=opened).trials
    states = [t.state for t in trials]
    assert states == [optuna.trial.TrialState.COMPLETE] + [optuna.trial.TrialState.FAIL] * 2
    with sessions() as s:
        run = tuning.get_run(s, row.id)
        assert run.state == "interrupted"
        assert run.result is not None
        assert run.result["orphaned_trials_failed"] == [o.number for o in orphans]
    # Interrupted runs resume; a second sweep finds nothing.
    assert sweep_orphaned_runs(sessions, url=url, stale_after_s=30) == []
    with unit_of_work(sessions) as s:
        resume_run(s, row.id, actor="t")
        assert tuning.get_run(s, row.id).state == "pending"


def test_stop_of_a_pending_run_and_no_second_run_on_a_busy_engine(
    sessions: SessionFactory, settings: Settings
) -> None:
    from controlplane.domain import ConflictError

    register(sessions, "http://127.0.0.1:9", None, "p99_s<=1")
    row = start(sessions, settings, _Offline(), trials=3)
    with pytest.raises(ConflictError, match="already being tuned"):
        start(sessions, settings, _Offline(), trials=3)
    with unit_of_work(sessions) as s:
        assert request_stop(s, row.id, actor="t") == "stopped"
        with pytest.raises(ConflictError):
            request_stop(s, row.id, actor="t")
