"""The health watch's rows: per-engine overrides (audited) and the watch's state.

The state is written by the scheduler's leader under its fence, in the same transaction as
the check it records, so a deposed leader cannot count a check or start a rollback twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.domain import Fence
from controlplane.domain import RolloutState
from controlplane.store import audit
from controlplane.store.base import utcnow
from controlplane.store.jobs import check_fence
from controlplane.store.models import HealthWatchRow
from controlplane.store.models import RolloutRow

ACTOR = "health-watch"
OVERRIDES = ("enabled", "interval_s", "failures", "window_s")


def get_watch(session: Session, engine_id: int) -> HealthWatchRow | None:
    return session.get(HealthWatchRow, engine_id)


def _ensure(session: Session, engine_id: int, actor: str) -> HealthWatchRow:
    row = session.get(HealthWatchRow, engine_id)
    if row is None:
        row = HealthWatchRow(engine_id=engine_id, consecutive_failures=0, updated_by=actor)
        session.add(row)
        session.flush()
    return row


def set_overrides(
    session: Session, engine_id: int, changes: dict[str, Any], *, actor: str
) -> HealthWatchRow:
    """Set (a value) or clear (``None``: back to the setting) the named overrides; audited.
    Only keys of :data:`OVERRIDES` are taken."""
    row = _ensure(session, engine_id, actor)
    changed: dict[str, Any] = {}
    for key in OVERRIDES:
        if key in changes and getattr(row, key) != changes[key]:
            changed[key] = {"from": getattr(row, key), "to": changes[key]}
            setattr(row, key, changes[key])
    if changed:
        row.updated_by = actor
        row.updated = utcnow()
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="engine.health_watch",
            target_type="engine",
            target_id=engine_id,
            detail=changed,
        )
    return row


@dataclass(frozen=True)
class Commit:
    """An engine's latest committed rollout: the change the watch is about."""

    engine_id: int
    rollout_id: int
    reason: str
    finished_at: datetime | None
    from_config_id: int | None
    to_config_id: int | None


def latest_commits(session: Session) -> list[Commit]:
    """Per engine, its latest committed rollout (by id)."""
    latest = (
        select(func.max(RolloutRow.id))
        .where(RolloutRow.state == RolloutState.committed.value)
        .group_by(RolloutRow.engine_id)
    )
    rows = session.scalars(select(RolloutRow).where(RolloutRow.id.in_(latest)))
    return [
        Commit(r.engine_id, r.id, r.reason, r.finished_at, r.from_config_id, r.to_config_id)
        for r in rows
    ]


def record_check(
    session: Session,
    engine_id: int,
    *,
    rollout_id: int,
    ok: bool,
    detail: str,
    at: datetime,
    fence: Fence | None,
) -> HealthWatchRow:
    """Count one check of the change ``rollout_id``: a success resets the count, a failure
    adds one; a check of a newer change than the one counted so far starts from zero.

    Raises:
        FencedOutError: the leader lost its lease; nothing is written.
    """
    if fence is not None:
        check_fence(session, fence)
    row = _ensure(session, engine_id, ACTOR)
    if row.watched_rollout_id != rollout_id:
        row.watched_rollout_id = rollout_id
        row.consecutive_failures = 0
        row.rollback_rollout_id = None
    row.last_check_at = at
    if ok:
        row.consecutive_failures = 0
        row.last_ok_at = at
        row.last_error = None
    else:
        row.consecutive_failures += 1
        row.last_error = detail[:2000]
    session.flush()
    return row


def record_rollback(session: Session, row: HealthWatchRow, rollout_id: int) -> None:
    """The rollback started for the watched change; the watch of that change ends here."""
    row.rollback_rollout_id = rollout_id
    row.updated = utcnow()
    session.flush()
