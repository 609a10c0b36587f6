"""The rollouts and tuning runs around an incident, read from their own tables.

A change "around" an incident is one of the incident's engine that overlaps the window from
a lead time before the incident opened to its resolution (or now, while it is open): a
rollout that finished ten minutes before the pager went off is the first suspect, one still
baking is the second. Read-only; nothing here is stored with the incident, so the answer
stays true when a rollout that was in flight finishes later.
"""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta

from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.schemas.oncall import NearbyRollout
from controlplane.schemas.oncall import NearbyTuningRun
from controlplane.store.models import RolloutRow
from controlplane.store.models import TuningRunRow

DEFAULT_LEAD = timedelta(minutes=30)
# Enough for any real incident; bounds the answer if an engine was tuned in a tight loop.
MAX_NEARBY = 50


def window(
    triggered_at: datetime,
    resolved_at: datetime | None,
    *,
    now: datetime,
    lead: timedelta = DEFAULT_LEAD,
) -> tuple[datetime, datetime]:
    return triggered_at - lead, resolved_at or now


def nearby_rollouts(
    session: Session, engine_id: int, start: datetime, end: datetime
) -> list[NearbyRollout]:
    """Rollouts begun before ``end`` and not finished before ``start``, oldest first."""
    query = (
        select(RolloutRow)
        .where(
            RolloutRow.engine_id == engine_id,
            RolloutRow.created <= end,
            or_(RolloutRow.finished_at.is_(None), RolloutRow.finished_at >= start),
        )
        .order_by(RolloutRow.created, RolloutRow.id)
        .limit(MAX_NEARBY)
    )
    return [
        NearbyRollout(
            id=r.id,
            state=r.state,
            reason=r.reason,
            started_at=r.created,
            finished_at=r.finished_at,
        )
        for r in session.scalars(query)
    ]


def nearby_tuning_runs(
    session: Session, engine_id: int, start: datetime, end: datetime
) -> list[NearbyTuningRun]:
    """Tuning runs begun (or queued, if never started) before ``end`` and not finished
    before ``start``, oldest first."""
    began = func.coalesce(TuningRunRow.started_at, TuningRunRow.created)
    query = (
        select(TuningRunRow)
        .where(
            TuningRunRow.engine_id == engine_id,
            began <= end,
            or_(TuningRunRow.finished_at.is_(None), TuningRunRow.finished_at >= start),
        )
        .order_by(began, TuningRunRow.id)
        .limit(MAX_NEARBY)
    )
    return [
        NearbyTuningRun(
            id=r.id,
            state=r.state,
            objective=r.objective,
            started_at=r.started_at or r.created,
            finished_at=r.finished_at,
        )
        for r in session.scalars(query)
    ]
