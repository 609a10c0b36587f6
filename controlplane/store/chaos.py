"""Persisted chaos experiments. The guard's reaction is read from the rollouts recorded while
the fault was in place, so judging an experiment needs no import of the guard itself."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from controlplane.domain import ConflictError
from controlplane.domain import NotFoundError
from controlplane.domain import Sample
from controlplane.store import audit
from controlplane.store.base import utcnow
from controlplane.store.models import ChaosExperimentRow
from controlplane.store.models import RolloutRow
from controlplane.store.samples import fetch_series

TERMINAL = ("completed", "aborted", "failed")


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
        state="running",
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
    state: str,
    result: dict[str, Any],
    actor: str,
    error: str | None = None,
    failed_requests: int | None = None,
    slo_violation_s: float | None = None,
) -> ChaosExperimentRow:
    """Store the result; the state moves only from ``running`` (an abort keeps its state)."""
    row = get_experiment(session, experiment_id)
    row.result = {**(row.result or {}), **result}
    row.failed_requests = failed_requests
    row.slo_violation_s = slo_violation_s
    if error is not None:
        row.error = error
    if row.state == "running":
        row.state = state
    row.finished_at = row.finished_at or utcnow()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=f"chaos.{state}",
        target_type="chaos_experiment",
        target_id=row.id,
        detail={"mechanisms": row.mechanisms, "error": error} if error else {},
    )
    return row


def mark_aborted(session: Session, experiment_id: int, *, actor: str) -> ChaosExperimentRow:
    """Compare-and-set ``running`` -> ``aborted``.

    Raises:
        ConflictError: the experiment has already finished.
    """
    row = get_experiment(session, experiment_id)
    result = session.execute(
        update(ChaosExperimentRow)
        .where(ChaosExperimentRow.id == experiment_id, ChaosExperimentRow.state == "running")
        .values(state="aborted", finished_at=utcnow(), updated=utcnow())
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 1) != 1:
        raise ConflictError(f"chaos experiment {experiment_id} is {row.state}: nothing to abort")
    session.refresh(row)
    audit.record(
        session,
        actor=actor,
        action="chaos.abort",
        target_type="chaos_experiment",
        target_id=experiment_id,
    )
    return row


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
