"""Persisted rollouts. Two rules hold in the database, not in application code that could
race: one active rollout per engine (partial unique index), and a state moves only from the
state the mover read (compare-and-set UPDATE), so a guard and a start-up reconcile that act
on the same rollout cannot both win."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controlplane.domain import ConflictError
from controlplane.domain import NotFoundError
from controlplane.domain import RolloutState
from controlplane.domain.rollouts import ACTIVE
from controlplane.domain.rollouts import can_move
from controlplane.store import audit
from controlplane.store.base import utcnow
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
        ConflictError: the move is illegal, or someone else moved the rollout first.
    """
    current = RolloutState(rollout.state)
    if not can_move(current, to):
        raise ConflictError(f"rollout {rollout.id} cannot move from {current} to {to}")
    values: dict[str, Any] = {
        "state": to.value,
        "evidence": {**(rollout.evidence or {}), **(evidence or {})},
        "updated": utcnow(),
    }
    if error is not None:
        values["error"] = error
    if to.terminal:
        values["finished_at"] = utcnow()
    result = session.execute(
        update(RolloutRow)
        .where(RolloutRow.id == rollout.id, RolloutRow.state == current.value)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 1) != 1:
        raise ConflictError(f"rollout {rollout.id} was moved by someone else")
    session.refresh(rollout)
    audit.record(
        session,
        actor=actor,
        action=f"rollout.{to.value}",
        target_type="rollout",
        target_id=rollout.id,
        detail={"from": current.value, "error": error} if error else {"from": current.value},
    )
    return rollout


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
