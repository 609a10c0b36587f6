"""Persisted rollouts. Two rules hold in the database, not in application code that could
race: one active rollout per engine (partial unique index), and a state moves only from the
state the mover read (compare-and-set UPDATE, :func:`controlplane.store.lifecycle.transition`),
so a guard and a start-up reconcile that act on the same rollout cannot both win. The
heartbeat a guarding process stamps and the claim a reconciler takes are compare-and-set
UPDATEs here too."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controlplane.domain import ConflictError
from controlplane.domain import NotFoundError
from controlplane.domain import RolloutState
from controlplane.domain.rollouts import ACTIVE
from controlplane.domain.rollouts import ROLLOUT_LIFECYCLE
from controlplane.store import audit
from controlplane.store.base import utcnow
from controlplane.store.lifecycle import transition
from controlplane.store.models import RolloutRow


def start_rollout(
    session: Session,
    *,
    engine_id: int,
    from_config_id: int | None,
    to_config_id: int | None,
    reason: str,
    actor: str,
    evidence: dict[str, Any] | None = None,
) -> RolloutRow:
    """A new rollout in ``pending``.

    Raises:
        ConflictError: the engine already has a rollout in flight.
    """
    row = RolloutRow(
        engine_id=engine_id,
        from_config_id=from_config_id,
        to_config_id=to_config_id,
        reason=reason,
        actor=actor,
        state=RolloutState.pending.value,
        evidence=evidence or {},
        # Its creator watches it until a runner takes over; reconcile must not call it
        # abandoned in between.
        heartbeat_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        current = active_rollout(session, engine_id)
        which = f"rollout {current.id} ({current.state})" if current else "a rollout"
        raise ConflictError(f"engine {engine_id} already has {which} in flight") from exc
    audit.record(
        session,
        actor=actor,
        action="rollout.start",
        target_type="rollout",
        target_id=row.id,
        detail={"engine_id": engine_id, "reason": reason, "to_config_id": to_config_id},
    )
    return row


def move(
    session: Session,
    rollout: RolloutRow,
    to: RolloutState,
    *,
    actor: str,
    evidence: dict[str, Any] | None = None,
    error: str | None = None,
) -> RolloutRow:
    """Move ``rollout`` to ``to``, merging ``evidence`` into what it already holds.

    Raises:
        IllegalTransitionError: the state machine does not allow the move (a ConflictError).
        ConflictError: someone else moved the rollout first.
    """
    values: dict[str, Any] = {"evidence": {**(rollout.evidence or {}), **(evidence or {})}}
    if error is not None:
        values["error"] = error
    return transition(
        session,
        rollout,
        to,
        lifecycle=ROLLOUT_LIFECYCLE,
        actor=actor,
        values=values,
        detail={"error": error} if error else None,
    )


def stamp_heartbeat(session: Session, rollout_id: int) -> bool:
    """Renew the lease of the process guarding the rollout.

    Returns ``False`` when its runner should stop: an operator asked for a rollback (a flag
    in the evidence, set from whatever process) or the rollout is gone. Fits
    :class:`controlplane.store.leases.Lease` as its stamp.
    """
    session.execute(
        update(RolloutRow)
        .where(RolloutRow.id == rollout_id)
        .values(heartbeat_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    evidence = session.scalar(select(RolloutRow.evidence).where(RolloutRow.id == rollout_id))
    return evidence is not None and not evidence.get("rollback_requested_by")


def claim_abandoned(session: Session, rollout_id: int, cutoff: datetime) -> bool:
    """Take over a rollout nobody has stamped since ``cutoff`` (compare-and-set on the
    heartbeat), so of two reconcilers only one restores the engine. ``True`` if claimed."""
    result = session.execute(
        update(RolloutRow)
        .where(
            RolloutRow.id == rollout_id,
            or_(RolloutRow.heartbeat_at.is_(None), RolloutRow.heartbeat_at < cutoff),
        )
        .values(heartbeat_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return getattr(result, "rowcount", 0) == 1


def get_rollout(session: Session, rollout_id: int) -> RolloutRow:
    row = session.get(RolloutRow, rollout_id)
    if row is None:
        raise NotFoundError(f"rollout {rollout_id} not found")
    return row


def active_rollout(session: Session, engine_id: int) -> RolloutRow | None:
    query = select(RolloutRow).where(
        RolloutRow.engine_id == engine_id, RolloutRow.state.in_([s.value for s in ACTIVE])
    )
    return session.scalars(query).one_or_none()


def unfinished_rollouts(session: Session) -> list[RolloutRow]:
    """Rollouts not in a terminal state: after a crash, the start-up reconcile takes these."""
    query = select(RolloutRow).where(RolloutRow.state.in_([s.value for s in ACTIVE]))
    return list(session.scalars(query.order_by(RolloutRow.id)))


def list_rollouts(
    session: Session,
    *,
    engine_id: int | None = None,
    state: RolloutState | None = None,
    limit: int = 100,
) -> list[RolloutRow]:
    query = select(RolloutRow).order_by(RolloutRow.id.desc()).limit(limit)
    if engine_id is not None:
        query = query.where(RolloutRow.engine_id == engine_id)
    if state is not None:
        query = query.where(RolloutRow.state == state.value)
    return list(session.scalars(query))


def approve(session: Session, rollout: RolloutRow, *, actor: str) -> RolloutRow:
    """Clear the approval flag of a pending rollout so a runner may take it."""
    if rollout.state != RolloutState.pending.value or not rollout.evidence.get(
        "awaiting_approval"
    ):
        raise ConflictError(f"rollout {rollout.id} is not waiting for approval ({rollout.state})")
    rollout.evidence = {**rollout.evidence, "awaiting_approval": False, "approved_by": actor}
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="rollout.approve",
        target_type="rollout",
        target_id=rollout.id,
    )
    return rollout


def request_rollback(session: Session, rollout: RolloutRow, *, actor: str) -> RolloutRow:
    """Flag a baking rollout for rollback; its runner (in whatever process) acts on it."""
    if RolloutState(rollout.state) not in ACTIVE:
        raise ConflictError(f"rollout {rollout.id} is {rollout.state}: nothing to stop")
    rollout.evidence = {**rollout.evidence, "rollback_requested_by": actor}
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="rollout.rollback_requested",
        target_type="rollout",
        target_id=rollout.id,
    )
    return rollout


def add_evidence(
    session: Session, rollout_id: int, evidence: dict[str, Any], *, state: RolloutState
) -> None:
    """Merge ``evidence`` into a rollout that is still in ``state`` (a canary's steps while it
    bakes), under a row lock so a concurrent rollback request is not overwritten.

    Raises:
        ConflictError: the rollout has left ``state`` (someone else moved it).
    """
    row = session.get(RolloutRow, rollout_id, with_for_update=True, populate_existing=True)
    if row is None:
        raise NotFoundError(f"rollout {rollout_id} not found")
    if row.state != state.value:
        raise ConflictError(f"rollout {rollout_id} is {row.state}, not {state.value}")
    row.evidence = {**(row.evidence or {}), **evidence}
    session.flush()
