"""Persisted chaos experiments. The guard's reaction is read from the rollouts recorded while
the fault was in place, so judging an experiment needs no import of the guard itself."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.domain import ChaosState
from controlplane.domain import ConflictError
from controlplane.domain import IllegalTransitionError
from controlplane.domain import NotFoundError
from controlplane.domain import Sample
from controlplane.domain.chaos import CHAOS_ACTION
from controlplane.domain.chaos import CHAOS_LIFECYCLE
from controlplane.store import audit
from controlplane.store.base import utcnow
from controlplane.store.lifecycle import transition
from controlplane.store.models import ChaosExperimentRow
from controlplane.store.models import RolloutRow
from controlplane.store.samples import fetch_series

TERMINAL = tuple(s.value for s in ChaosState if s in CHAOS_LIFECYCLE.terminal)


def start_experiment(
    session: Session,
    *,
    target: str,
    fault: str,
    duration_s: float,
    expected: str,
    hypothesis: list[str],
    engine_id: int | None,
    actor: str,
) -> ChaosExperimentRow:
    row = ChaosExperimentRow(
        engine_id=engine_id,
        target=target,
        fault=fault,
        duration_s=duration_s,
        expected=expected,
        hypothesis={"slos": hypothesis},
        state=ChaosState.running.value,
        mechanisms={},
        result={},
        actor=actor,
        started_at=utcnow(),
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="chaos.start",
        target_type="chaos_experiment",
        target_id=row.id,
        detail={"target": target, "fault": fault, "duration_s": duration_s},
    )
    return row


def set_mechanisms(session: Session, row: ChaosExperimentRow, mechanisms: dict[str, Any]) -> None:
    row.mechanisms = dict(mechanisms)
    session.flush()


def finish_experiment(
    session: Session,
    experiment_id: int,
    *,
    state: ChaosState | str,
    result: dict[str, Any],
    actor: str,
    error: str | None = None,
    failed_requests: int | None = None,
    slo_violation_s: float | None = None,
) -> ChaosExperimentRow:
    """Store the result; the state moves only from ``running`` (an abort keeps its state)."""
    ending = CHAOS_LIFECYCLE.parse(state)
    row = get_experiment(session, experiment_id)
    values: dict[str, Any] = {
        "result": {**(row.result or {}), **result},
        "failed_requests": failed_requests,
        "slo_violation_s": slo_violation_s,
        "finished_at": row.finished_at or utcnow(),
    }
    if error is not None:
        values["error"] = error
    detail = {"mechanisms": row.mechanisms, "error": error} if error else {}
    if row.state == ChaosState.running.value:
        try:
            return transition(
                session,
                row,
                ending,
                lifecycle=CHAOS_LIFECYCLE,
                actor=actor,
                values=values,
                action=CHAOS_ACTION,
                detail=detail,
            )
        except IllegalTransitionError:
            raise
        except ConflictError:
            session.refresh(row)  # aborted meanwhile: keep that, store the result below
    for name, value in values.items():
        setattr(row, name, value)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=f"{CHAOS_ACTION}.{ending.value}",
        target_type=CHAOS_LIFECYCLE.name,
        target_id=row.id,
        detail=detail,
    )
    return row


def mark_aborted(session: Session, experiment_id: int, *, actor: str) -> ChaosExperimentRow:
    """Compare-and-set ``running`` -> ``aborted``.

    Raises:
        ConflictError: the experiment has already finished.
    """
    row = get_experiment(session, experiment_id)
    try:
        return transition(
            session,
            row,
            ChaosState.aborted,
            lifecycle=CHAOS_LIFECYCLE,
            actor=actor,
            expect=(ChaosState.running,),
            event=f"{CHAOS_ACTION}.abort",
        )
    except ConflictError as exc:
        session.refresh(row)
        raise ConflictError(
            f"chaos experiment {experiment_id} is {row.state}: nothing to abort"
        ) from exc


def get_experiment(session: Session, experiment_id: int) -> ChaosExperimentRow:
    row = session.get(ChaosExperimentRow, experiment_id)
    if row is None:
        raise NotFoundError(f"chaos experiment {experiment_id} not found")
    return row


def list_experiments(
    session: Session, *, state: str | None = None, limit: int = 100
) -> list[ChaosExperimentRow]:
    query = select(ChaosExperimentRow).order_by(ChaosExperimentRow.id.desc()).limit(limit)
    if state is not None:
        query = query.where(ChaosExperimentRow.state == state)
    return list(session.scalars(query))


def guard_reaction(
    session: Session, *, engine_id: int, since: datetime, until: datetime
) -> dict[str, Any]:
    """Rollouts of the engine that were live during ``[since, until]`` and how they ended."""
    query = (
        select(RolloutRow)
        .where(
            RolloutRow.engine_id == engine_id,
            RolloutRow.created <= until,
            (RolloutRow.finished_at.is_(None)) | (RolloutRow.finished_at >= since),
        )
        .order_by(RolloutRow.id)
    )
    rows = list(session.scalars(query))
    rolled_back = [r for r in rows if r.state == "rolled_back"]
    first = min((r.finished_at for r in rolled_back if r.finished_at), default=None)
    return {
        "rollouts": [{"id": r.id, "state": r.state, "reason": r.reason} for r in rows],
        "rolled_back": len(rolled_back),
        "committed": sum(1 for r in rows if r.state == "committed"),
        "detection_s": (first - since).total_seconds() if first else None,
        "reaction": "rollback" if rolled_back else "hold",
    }


def engine_samples(
    session: Session, *, source: str, metrics: tuple[str, ...], start: float, end: float
) -> list[Sample]:
    """The stored samples of ``metrics`` from one engine in ``[start, end]``, as samples."""
    out: list[Sample] = []
    for metric in metrics:
        for series in fetch_series(session, source=source, metric=metric, start=start, end=end):
            labels = tuple(sorted(series.labels.items()))
            out.extend(Sample(ts, source, metric, labels, value) for ts, value in series.points)
    return out
