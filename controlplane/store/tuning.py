"""Tuning runs: one row per run, beside the Optuna study (same database) it names.

A run's lease is its ``updated`` column: the process running it stamps it every few
seconds, so a run left ``running`` by a crashed process is recognised by an old stamp and
nothing else (Optuna's own heartbeat does not cover ask / tell). States move by
compare-and-set through the run's lifecycle (:mod:`controlplane.domain.tuning`), like
rollouts, so a sweep and a live runner cannot both win.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controlplane.domain import ConflictError
from controlplane.domain import NotFoundError
from controlplane.domain import TuningRunState
from controlplane.domain.tuning import FINAL
from controlplane.domain.tuning import TUNING_ACTION
from controlplane.domain.tuning import TUNING_RUN_LIFECYCLE
from controlplane.store import audit
from controlplane.store.base import utcnow
from controlplane.store.lifecycle import transition
from controlplane.store.models import TuningRunRow

ACTIVE_STATES = tuple(s.value for s in TuningRunState if s in TUNING_RUN_LIFECYCLE.active)
TERMINAL_STATES = tuple(s.value for s in TuningRunState if s in TUNING_RUN_LIFECYCLE.terminal)
# Stopped and interrupted runs may be resumed (back to pending); these never change again.
FINAL_STATES = tuple(s.value for s in TuningRunState if s in FINAL)
# A process holds these and stamps their lease; a stale stamp means the process is gone.
LEASED_STATES = (TuningRunState.running.value, TuningRunState.stopping.value)


def create_run(
    session: Session,
    *,
    engine_id: int,
    study_name: str,
    objective: str,
    spec: dict[str, Any],
    actor: str,
) -> TuningRunRow:
    """A new run in ``pending``.

    Raises:
        ConflictError: the study name is taken, or the engine has another run in progress.
    """
    busy = active_run(session, engine_id)
    if busy is not None:
        raise ConflictError(
            f"engine {engine_id} is being tuned by run {busy.id} ({busy.state}); "
            f"stop it first with `cplane tuning stop {busy.id}`"
        )
    row = TuningRunRow(
        engine_id=engine_id,
        study_name=study_name,
        state=TuningRunState.pending.value,
        objective=objective,
        spec=spec,
        actor=actor,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        raise ConflictError(f"a tuning run with study {study_name!r} exists") from exc
    audit.record(
        session,
        actor=actor,
        action="tuning.start",
        target_type="tuning_run",
        target_id=row.id,
        detail={"engine_id": engine_id, "study": study_name, "objective": objective},
    )
    return row


def get_run(session: Session, run_id: int) -> TuningRunRow:
    row = session.get(TuningRunRow, run_id)
    if row is None:
        raise NotFoundError(f"tuning run {run_id} not found")
    return row


def list_runs(
    session: Session, *, engine_id: int | None = None, limit: int = 100
) -> list[TuningRunRow]:
    query = select(TuningRunRow).order_by(TuningRunRow.id.desc()).limit(limit)
    if engine_id is not None:
        query = query.where(TuningRunRow.engine_id == engine_id)
    return list(session.scalars(query))


def active_run(session: Session, engine_id: int) -> TuningRunRow | None:
    return session.scalars(
        select(TuningRunRow).where(
            TuningRunRow.engine_id == engine_id, TuningRunRow.state.in_(ACTIVE_STATES)
        )
    ).first()


def move(
    session: Session,
    run: TuningRunRow,
    to: TuningRunState | str,
    *,
    actor: str,
    expect: tuple[TuningRunState | str, ...] | None = None,
    result: dict[str, Any] | None = None,
) -> TuningRunRow:
    """Move ``run`` to ``to`` if it is still in one of ``expect`` (default: its state now).

    Raises:
        IllegalTransitionError: the run's lifecycle does not allow the move.
        ConflictError: someone else moved the run first, or it has already finished.
    """
    if run.state in FINAL_STATES:
        raise ConflictError(f"tuning run {run.id} is {run.state}: it has finished")
    target = TUNING_RUN_LIFECYCLE.parse(to)
    sources = None if expect is None else [TUNING_RUN_LIFECYCLE.parse(s) for s in expect]
    values: dict[str, Any] = {}
    if result is not None:
        values["result"] = {**(run.result or {}), **result}
    if target is TuningRunState.running:
        values["finished_at"] = None  # a resumed run is not finished any more
        if run.started_at is None:
            values["started_at"] = utcnow()
    return transition(
        session,
        run,
        target,
        lifecycle=TUNING_RUN_LIFECYCLE,
        actor=actor,
        expect=sources,
        values=values,
        action=TUNING_ACTION,
    )


def stamp(session: Session, run_id: int, *, result: dict[str, Any] | None = None) -> str:
    """Renew the lease (and merge progress into ``result``); returns the run's state, so the
    runner sees a stop requested from another process."""
    row = get_run(session, run_id)
    values: dict[str, Any] = {"updated": utcnow()}
    if result is not None:
        values["result"] = {**(row.result or {}), **result}
    session.execute(
        update(TuningRunRow)
        .where(TuningRunRow.id == run_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return row.state


def stale_runs(session: Session, *, cutoff: datetime) -> list[TuningRunRow]:
    """Runs in progress whose lease is older than ``cutoff``: their process is gone."""
    return list(
        session.scalars(
            select(TuningRunRow).where(
                TuningRunRow.state.in_(LEASED_STATES), TuningRunRow.updated < cutoff
            )
        )
    )
