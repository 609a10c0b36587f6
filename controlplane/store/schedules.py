"""Tuning schedules: one row per schedule, every change audited in the same transaction.

A schedule has no lifecycle of its own (``paused`` is a flag an operator flips); its firings
are job runs (:mod:`controlplane.store.jobs`) under the job name ``schedule:<id>``. The
scheduler re-reads the table when :func:`schedules_version` changes, so a schedule edited in
any process is picked up by the leader.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controlplane.domain import ConflictError
from controlplane.domain import NotFoundError
from controlplane.domain.ids import MAX_ROW_ID
from controlplane.domain.ids import parse_row_id
from controlplane.store import audit
from controlplane.store.base import utcnow
from controlplane.store.models import ScheduleRow


def job_name(schedule_id: int) -> str:
    """The job name a schedule's firings are recorded under."""
    return f"schedule:{schedule_id}"


def create_schedule(
    session: Session,
    *,
    name: str | None,
    engine_id: int,
    engine_name: str,
    cron: str,
    timezone: str,
    spec: dict[str, Any],
    skip: dict[str, Any],
    paused: bool,
    actor: str,
) -> ScheduleRow:
    """A new schedule; without a name it is called ``<engine>-<n>``.

    Raises:
        ConflictError: the name is taken.
    """
    if name is None:
        count = session.scalar(
            select(func.count()).select_from(ScheduleRow).where(ScheduleRow.engine_id == engine_id)
        )
        name = _free_name(session, engine_name, int(count or 0) + 1)
    row = ScheduleRow(
        name=name,
        engine_id=engine_id,
        cron=cron,
        timezone=timezone,
        spec=spec,
        skip=skip,
        paused=paused,
        created_by=actor,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        raise ConflictError(f"a schedule named {name!r} exists") from exc
    audit.record(
        session,
        actor=actor,
        action="schedule.create",
        target_type="schedule",
        target_id=row.id,
        detail={"name": name, "engine_id": engine_id, "cron": cron, "timezone": timezone},
    )
    return row


def _free_name(session: Session, base: str, n: int) -> str:
    while session.scalar(select(ScheduleRow.id).where(ScheduleRow.name == f"{base}-{n}")):
        n += 1
    return f"{base}-{n}"


def get_schedule(session: Session, ref: str | int) -> ScheduleRow:
    """By id (an int, or a string of ASCII digits) or by name."""
    row: ScheduleRow | None
    if isinstance(ref, int):
        row = session.get(ScheduleRow, ref) if 1 <= ref <= MAX_ROW_ID else None
    elif (row_id := parse_row_id(ref)) is not None:
        row = session.get(ScheduleRow, row_id)
    elif ref.isascii() and ref.isdigit():
        row = None  # digits past the id range can name no row
    else:
        row = session.scalars(select(ScheduleRow).where(ScheduleRow.name == ref)).first()
    if row is None:
        raise NotFoundError(f"schedule {ref!r} not found")
    return row


def list_schedules(session: Session, *, engine_id: int | None = None) -> list[ScheduleRow]:
    query = select(ScheduleRow).order_by(ScheduleRow.id)
    if engine_id is not None:
        query = query.where(ScheduleRow.engine_id == engine_id)
    return list(session.scalars(query))


def set_paused(session: Session, row: ScheduleRow, paused: bool, *, actor: str) -> ScheduleRow:
    """Pause or resume; a no-op (and no audit event) when it already is."""
    if row.paused == paused:
        return row
    row.paused = paused
    row.updated = utcnow()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="schedule.pause" if paused else "schedule.resume",
        target_type="schedule",
        target_id=row.id,
        detail={"name": row.name},
    )
    return row


def delete_schedule(session: Session, row: ScheduleRow, *, actor: str) -> None:
    """Remove the schedule; its past firings stay in the job-run history."""
    detail = {"name": row.name, "engine_id": row.engine_id, "cron": row.cron}
    schedule_id = row.id
    session.delete(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="schedule.delete",
        target_type="schedule",
        target_id=schedule_id,
        detail=detail,
    )


def schedules_version(session: Session) -> tuple[int, int, datetime | None]:
    """(count, highest id, newest ``updated``): changes whenever a schedule is added,
    removed, paused or resumed."""
    count, top, newest = session.execute(
        select(func.count(), func.max(ScheduleRow.id), func.max(ScheduleRow.updated))
    ).one()
    return int(count), int(top or 0), newest
