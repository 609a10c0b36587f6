"""Operating tuning runs: stop, resume, sweep orphans, list trials, run in the background.

The sweep is what makes a control-plane crash harmless to a study: a run still marked
``running`` whose lease went stale has no process behind it, so its RUNNING trials are
told FAIL (the guard's own reconcile puts the engine back on its last known good config
for the rollout the trial was baking) and the run becomes ``interrupted``, resumable.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import optuna
from sqlalchemy.orm import Session

from controlplane.domain import ConflictError
from controlplane.domain import NotFoundError
from controlplane.domain import TuningRunState
from controlplane.schemas.tuning import TrialRead
from controlplane.store import rollouts
from controlplane.store import tuning
from controlplane.store.base import utcnow
from controlplane.store.database import SessionFactory
from tuner._run import Tuner
from tuner._study import fail_orphaned_trials
from tuner._study import opened_storage

log = logging.getLogger("tuner")


def sweep_orphaned_runs(
    sessions: SessionFactory,
    *,
    url: str,
    stale_after_s: float,
    actor: str = "tuner-sweep",
    tuner: Tuner | None = None,
) -> list[int]:
    """Mark runs whose lease is stale ``interrupted`` and fail their RUNNING trials; with a
    ``tuner``, put each one's engine back on its pre-study config through the guard (the
    dead process may have left it on a trial's config, which a next study would otherwise
    take for its baseline)."""
    cutoff = utcnow() - timedelta(seconds=stale_after_s)
    with sessions() as session, session.begin():
        stale = [(r.id, r.study_name) for r in tuning.stale_runs(session, cutoff=cutoff)]
    swept = []
    for run_id, study_name in stale:
        failed = _fail_running(url, study_name)
        with sessions() as session, session.begin():
            row = tuning.get_run(session, run_id)
            try:
                tuning.move(
                    session,
                    row,
                    TuningRunState.interrupted,
                    actor=actor,
                    expect=(TuningRunState.running, TuningRunState.stopping),
                    result={
                        "note": "the process running it stopped; resume with "
                        f"`cplane tuning resume {run_id}`",
                        "orphaned_trials_failed": failed,
                    },
                )
            except ConflictError:
                continue  # it stamped its lease meanwhile, or another sweep won
        swept.append(run_id)
        if tuner is not None:
            try:
                restored = tuner.restore_pre_study(run_id)
            except Exception as exc:  # noqa: BLE001 - the run is swept either way; say why not
                log.warning("tuning run %d: pre-study config not restored: %s", run_id, exc)
                restored = {"restored": False, "error": f"{type(exc).__name__}: {exc}"}
            with sessions() as session, session.begin():
                tuning.stamp(session, run_id, result={"restored": restored})
    return swept


def _fail_running(url: str, study_name: str) -> list[int]:
    with opened_storage(url) as opened:
        try:
            study = optuna.load_study(study_name=study_name, storage=opened)
        except KeyError:
            return []  # the run never got as far as creating its study
        return fail_orphaned_trials(study)


def request_stop(session: Session, run_id: int, *, actor: str) -> str:
    """Ask a run to stop after its current trial; a pending one stops at once."""
    row = tuning.get_run(session, run_id)
    if row.state == TuningRunState.pending:
        tuning.move(session, row, TuningRunState.stopped, actor=actor)
    elif row.state == TuningRunState.running:
        tuning.move(session, row, TuningRunState.stopping, actor=actor)
    elif row.state != TuningRunState.stopping:
        raise ConflictError(f"tuning run {run_id} is {row.state}: nothing to stop")
    return row.state


def resume_run(session: Session, run_id: int, *, actor: str) -> None:
    """Make a stopped or interrupted run pending again; its study keeps every trial."""
    row = tuning.get_run(session, run_id)
    resumable = (TuningRunState.stopped, TuningRunState.interrupted)
    if row.state not in resumable:
        raise ConflictError(f"tuning run {run_id} is {row.state}; only stopped or "
                            "interrupted runs can be resumed")  # fmt: skip
    active = rollouts.active_rollout(session, row.engine_id)
    if active is not None:
        raise ConflictError(f"engine busy: rollout {active.id} is {active.state}")
    other = tuning.active_run(session, row.engine_id)
    if other is not None:
        raise ConflictError(f"engine is being tuned by run {other.id}")
    tuning.move(session, row, TuningRunState.pending, actor=actor, expect=resumable)


def list_trials(url: str, study_name: str) -> list[TrialRead]:
    """The study's trials as the API and CLI show them."""
    with opened_storage(url) as opened:
        try:
            study = optuna.load_study(study_name=study_name, storage=opened)
        except KeyError as exc:
            raise NotFoundError(f"study {study_name!r} has no trials yet") from exc
        trials = study.get_trials(deepcopy=True)
    out = []
    for t in trials:
        m: dict[str, Any] = t.user_attrs.get("measurement") or {}
        p99 = m.get("p99_s")
        out.append(
            TrialRead(
                number=t.number,
                state=t.state.name.lower(),
                params=dict(t.params),
                values=list(t.values) if t.values is not None else None,
                feasible=None
                if not t.constraints
                else all(v <= 0 for v in t.constraints.values()),
                kind=str(t.user_attrs.get("kind", "trial")),
                rollout_id=t.user_attrs.get("rollout_id"),
                goodput=m.get("goodput"),
                throughput=m.get("throughput"),
                p99_ms=None if p99 is None else round(float(p99) * 1000, 2),
                stable=m.get("stable"),
                error=t.user_attrs.get("error") or t.user_attrs.get("breach"),
            )
        )
    return out


class TuningService:
    """Runs tuning runs in daemon threads of a long-lived process (the API server).

    Daemon threads on purpose: a server that exits mid-run must not wait for the run to
    finish. The run is then orphaned, and the next start sweeps it (``interrupted``,
    resumable) while the guard's reconcile restores the engine.
    """

    def __init__(self, tuner_factory: Callable[[], Tuner]) -> None:
        self._factory = tuner_factory
        self._stops: dict[int, threading.Event] = {}
        self._threads: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()

    def submit(self, run_id: int) -> threading.Thread:
        stop = threading.Event()
        thread = threading.Thread(
            target=self._run, args=(run_id, stop), name=f"tuning-{run_id}", daemon=True
        )
        with self._lock:
            self._stops[run_id] = stop
            self._threads[run_id] = thread
        thread.start()
        return thread

    def stop(self, run_id: int) -> bool:
        with self._lock:
            stop = self._stops.get(run_id)
        if stop is None:
            return False
        stop.set()
        return True

    def shutdown(self, *, timeout_s: float = 30.0) -> None:
        """Stop every run after its current trial and wait up to ``timeout_s`` for them."""
        with self._lock:
            for stop in self._stops.values():
                stop.set()
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(timeout_s)

    def _run(self, run_id: int, stop: threading.Event) -> None:
        try:
            self._factory().run(run_id, stop=stop)
        except Exception:  # noqa: BLE001 - recorded on the run; nothing to re-raise to
            log.exception("tuning run %d crashed", run_id)
        finally:
            with self._lock:
                self._stops.pop(run_id, None)
                self._threads.pop(run_id, None)
