"""System jobs as the API and the CLI show and edit them, read from the store alone: any
replica answers, not only the leader (next run times are computed from the fixed grid that
every replica's trigger uses)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from controlplane.domain import JobScope
from controlplane.domain import ValidationError
from controlplane.scheduler._system_jobs import KINDS
from controlplane.scheduler._system_jobs import system_defaults
from controlplane.scheduler._triggers import next_interval_time
from controlplane.schemas.jobs import JobList
from controlplane.schemas.jobs import JobRead
from controlplane.schemas.jobs import JobRunRead
from controlplane.schemas.jobs import JobUpdate
from controlplane.schemas.jobs import LeaderRead
from controlplane.settings import SchedulerSettings
from controlplane.store import jobs
from controlplane.store.models import JobRow
from controlplane.store.models import JobRunRow


def _scope(kind: str) -> JobScope:
    known = KINDS.get(kind)
    return known.scope if known else JobScope.leader


def _run_pattern(row: JobRow) -> str:
    """Runs of an every-process job are recorded as ``<name>@<process>``."""
    return f"{row.name}@" if _scope(row.kind) == JobScope.every_process else row.name


def _read(row: JobRow, last: JobRunRow | None, now: datetime) -> JobRead:
    return JobRead(
        name=row.name,
        kind=row.kind,
        scope=_scope(row.kind).value,
        interval_s=row.interval_s,
        enabled=row.enabled,
        params=row.params,
        updated_by=row.updated_by,
        updated=row.updated,
        last_run=None if last is None else JobRunRead.model_validate(last),
        next_run_at=next_interval_time(row.interval_s, now) if row.enabled else None,
    )


def _last(session: Session, row: JobRow) -> JobRunRow | None:
    runs = jobs.list_runs(session, job=_run_pattern(row), limit=1)
    return runs[0] if runs else None


def job_list(session: Session, *, now: datetime) -> JobList:
    lease = jobs.lease_state(session)
    leader = None
    if lease is not None:
        leader = LeaderRead(
            holder=lease.holder,
            token=lease.token,
            acquired_at=lease.acquired_at,
            expires_at=lease.expires_at,
            live=lease.holder is not None
            and lease.expires_at is not None
            and lease.expires_at > now,
        )
    rows = jobs.list_jobs(session)
    return JobList(leader=leader, jobs=[_read(r, _last(session, r), now) for r in rows])


def job_runs(session: Session, name: str, *, limit: int = 50) -> list[JobRunRead]:
    row = jobs.get_job(session, name)
    return [
        JobRunRead.model_validate(r)
        for r in jobs.list_runs(session, job=_run_pattern(row), limit=limit)
    ]


def change_job(
    session: Session,
    name: str,
    change: JobUpdate,
    *,
    actor: str,
    policy: SchedulerSettings,
    now: datetime,
) -> JobRead:
    """Apply an edit, refusing an interval below ``min_job_interval_s``.

    Raises:
        ValidationError: the interval is too short (field ``interval_s``).
        NotFoundError: no such job.
    """
    if change.interval_s is not None and change.interval_s < policy.min_job_interval_s:
        raise ValidationError(
            f"interval_s: {change.interval_s:g} s is below the minimum of "
            f"{policy.min_job_interval_s:g} s",
            field="interval_s",
        )
    jobs.seed_jobs(session, system_defaults(policy), actor="scheduler")  # before a first start
    row = jobs.update_job(
        session, name, actor=actor, interval_s=change.interval_s, enabled=change.enabled
    )
    return _read(row, _last(session, row), now)
