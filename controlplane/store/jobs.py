"""Scheduler state: leader leases with fencing tokens, system job definitions, job runs.

Two rules hold in the database rather than in code that could race:

- **One run per firing.** ``job_runs`` is unique per (job, scheduled time). Whoever records a
  firing first owns it; every other attempt (a second replica, a retried firing, a deposed
  leader waking up) gets ``None`` from :func:`start_run` / :func:`skip_run` and does nothing.
- **Fencing.** A lease row carries a token raised by one on every acquisition. Each job write
  names the :class:`~controlplane.domain.Fence` it was decided under and :func:`check_fence`
  compares it with the row in the same transaction, holding a share lock on PostgreSQL so a
  takeover cannot commit between the check and the write. A late write from a leader that
  lost its lease raises :class:`~controlplane.domain.FencedOutError` and rolls back.

Lease times come from the caller's clock (``now``), so tests drive expiry without sleeping;
replicas on different machines need clocks synchronised well within ``lease_s``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controlplane.domain import Fence
from controlplane.domain import FencedOutError
from controlplane.domain import JobRunState
from controlplane.domain import NotFoundError
from controlplane.domain.scheduler import JOB_RUN_LIFECYCLE
from controlplane.store import audit
from controlplane.store.base import utcnow
from controlplane.store.lifecycle import transition
from controlplane.store.models import JobRow
from controlplane.store.models import JobRunRow
from controlplane.store.models import SchedulerLeaseRow

LEADER_LEASE = "scheduler"
"""The name of the scheduler's leader lease row."""


# -- leases --------------------------------------------------------------------------------


def acquire_or_renew(
    session: Session, name: str, holder: str, lease_s: float, now: datetime
) -> int | None:
    """Hold lease ``name`` for ``holder`` until ``now + lease_s``; the fencing token, or
    ``None`` when another holder's lease has not expired.

    A renewal by the current holder keeps its token (nobody else held it in between, so
    nothing it fenced can have changed hands); taking a free or expired lease raises the token
    by one, which fences out every write the previous holder still has in flight.
    """
    expires = now + timedelta(seconds=lease_s)
    renewed = session.execute(
        update(SchedulerLeaseRow)
        .where(SchedulerLeaseRow.name == name, SchedulerLeaseRow.holder == holder)
        .values(expires_at=expires)
        .execution_options(synchronize_session=False)
    )
    if getattr(renewed, "rowcount", 0) != 1:
        taken = session.execute(
            update(SchedulerLeaseRow)
            .where(
                SchedulerLeaseRow.name == name,
                or_(
                    SchedulerLeaseRow.holder.is_(None),
                    SchedulerLeaseRow.expires_at.is_(None),
                    SchedulerLeaseRow.expires_at <= now,
                ),
            )
            .values(
                holder=holder,
                token=SchedulerLeaseRow.token + 1,
                acquired_at=now,
                expires_at=expires,
            )
            .execution_options(synchronize_session=False)
        )
        if getattr(taken, "rowcount", 0) != 1:
            if session.get(SchedulerLeaseRow, name) is not None:
                return None
            row = SchedulerLeaseRow(
                name=name, holder=holder, token=1, acquired_at=now, expires_at=expires
            )
            try:
                with session.begin_nested():
                    session.add(row)
                    session.flush()
            except IntegrityError:
                return None  # another process created it first: it holds the lease
            return 1
    token = session.scalar(select(SchedulerLeaseRow.token).where(SchedulerLeaseRow.name == name))
    return int(token) if token is not None else None


def release(session: Session, name: str, holder: str) -> bool:
    """Give the lease up (a clean shutdown), so a successor need not wait for it to expire.
    The token stays: the next acquisition raises it. False when ``holder`` did not hold it."""
    result = session.execute(
        update(SchedulerLeaseRow)
        .where(SchedulerLeaseRow.name == name, SchedulerLeaseRow.holder == holder)
        .values(holder=None, expires_at=None)
        .execution_options(synchronize_session=False)
    )
    return getattr(result, "rowcount", 0) == 1


@dataclass(frozen=True, slots=True)
class LeaseState:
    name: str
    holder: str | None
    token: int
    acquired_at: datetime | None
    expires_at: datetime | None


def lease_state(session: Session, name: str = LEADER_LEASE) -> LeaseState | None:
    row = session.get(SchedulerLeaseRow, name)
    if row is None:
        return None
    return LeaseState(row.name, row.holder, row.token, row.acquired_at, row.expires_at)


def check_fence(session: Session, fence: Fence) -> None:
    """Refuse to go on unless ``fence`` still names the lease's holder and token.

    Call it in the transaction of the write it guards. On PostgreSQL the lease row is share
    locked until that transaction ends, so a takeover waits for the write instead of
    slipping in between (SQLite serialises writers anyway).

    Raises:
        FencedOutError: the lease has passed to another holder (or was released).
    """
    row = session.execute(
        select(SchedulerLeaseRow.holder, SchedulerLeaseRow.token)
        .where(SchedulerLeaseRow.name == fence.name)
        .with_for_update(read=True)
    ).one_or_none()
    if row is None or row.holder != fence.holder or row.token != fence.token:
        now = (
            "nobody" if row is None or row.holder is None else f"{row.holder} (token {row.token})"
        )
        raise FencedOutError(
            f"lease {fence.name!r} is no longer held by {fence.holder} with token "
            f"{fence.token}: {now} holds it"
        )


# -- job runs ------------------------------------------------------------------------------


def _insert_run(session: Session, row: JobRunRow) -> JobRunRow | None:
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return None
    return row


def start_run(
    session: Session,
    *,
    job: str,
    scheduled_for: datetime,
    fence: Fence | None,
    schedule_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> JobRunRow | None:
    """Record that firing ``(job, scheduled_for)`` has started; ``None`` when it already has a
    run (another process, or an earlier attempt, owns it: do nothing).

    ``fence`` is the leader lease the firing was decided under; ``None`` only for jobs that
    run in every process (their job name then carries the process, e.g. ``chaos_sweep@host``).

    Raises:
        FencedOutError: the fence is stale; nothing is written.
    """
    if fence is not None:
        check_fence(session, fence)
    now = utcnow()
    return _insert_run(
        session,
        JobRunRow(
            job=job,
            schedule_id=schedule_id,
            state=JobRunState.started.value,
            detail=detail or {},
            scheduled_for=scheduled_for,
            started_at=now,
            fence_token=fence.token if fence else None,
            holder=fence.holder if fence else None,
        ),
    )


def skip_run(
    session: Session,
    *,
    job: str,
    scheduled_for: datetime,
    fence: Fence | None,
    reason: str,
    detail: dict[str, Any] | None = None,
    schedule_id: int | None = None,
) -> JobRunRow | None:
    """Record that firing ``(job, scheduled_for)`` was skipped, with a reason code such as
    ``engine_busy``; ``None`` when the firing already has a run.

    Raises:
        FencedOutError: the fence is stale; nothing is written.
    """
    if fence is not None:
        check_fence(session, fence)
    now = utcnow()
    return _insert_run(
        session,
        JobRunRow(
            job=job,
            schedule_id=schedule_id,
            state=JobRunState.skipped.value,
            reason=reason,
            detail=detail or {},
            scheduled_for=scheduled_for,
            started_at=now,
            finished_at=now,
            fence_token=fence.token if fence else None,
            holder=fence.holder if fence else None,
        ),
    )


def finish_run(
    session: Session,
    run: JobRunRow,
    state: JobRunState,
    *,
    error: str | None = None,
    detail: dict[str, Any] | None = None,
    tuning_run_id: int | None = None,
    fence: Fence | None = None,
) -> JobRunRow:
    """Move a started run to ``done`` or ``failed``, merging ``detail`` into what it holds.

    The fence checked is ``fence`` if given, else the one the run was started under (its
    holder and token on the leader lease). ``run`` may come from an earlier session; the row
    returned is this session's.

    Raises:
        FencedOutError: the run's leader has lost the lease; nothing is written.
        IllegalTransitionError: the run is not ``started`` or ``state`` is not terminal.
        ConflictError: someone else finished it first.
    """
    if run not in session:  # started in an earlier transaction: work on this one's copy
        run = get_run(session, run.id)
    if fence is None and run.fence_token is not None and run.holder is not None:
        fence = Fence(LEADER_LEASE, run.holder, run.fence_token)
    if fence is not None:
        check_fence(session, fence)
    values: dict[str, Any] = {"detail": {**(run.detail or {}), **(detail or {})}}
    if error is not None:
        values["error"] = error
    if tuning_run_id is not None:
        values["tuning_run_id"] = tuning_run_id
    return transition(
        session,
        run,
        state,
        lifecycle=JOB_RUN_LIFECYCLE,
        actor=run.holder or "scheduler",
        values=values,
        detail={"job": run.job},
    )


def get_run(session: Session, run_id: int) -> JobRunRow:
    row = session.get(JobRunRow, run_id)
    if row is None:
        raise NotFoundError(f"job run {run_id} not found")
    return row


def list_runs(
    session: Session,
    *,
    job: str | None = None,
    schedule_id: int | None = None,
    limit: int = 100,
) -> list[JobRunRow]:
    """Newest firing first. ``job`` matches exactly; a job that runs in every process is
    recorded as ``<job>@<process>``, and ``job="<job>@"`` (a trailing ``@``) lists all of them."""
    query = (
        select(JobRunRow)
        .order_by(JobRunRow.scheduled_for.desc(), JobRunRow.id.desc())
        .limit(limit)
    )
    if job is not None:
        if job.endswith("@"):
            query = query.where(JobRunRow.job.startswith(job, autoescape=True))
        else:
            query = query.where(JobRunRow.job == job)
    if schedule_id is not None:
        query = query.where(JobRunRow.schedule_id == schedule_id)
    return list(session.scalars(query))


def last_runs(
    session: Session,
    *,
    jobs: Iterable[str] | None = None,
    state: JobRunState | None = None,
) -> dict[str, JobRunRow]:
    """The latest run of each job (optionally only runs in ``state``), keyed by job name."""
    latest = select(JobRunRow.job, func.max(JobRunRow.scheduled_for).label("at")).group_by(
        JobRunRow.job
    )
    if jobs is not None:
        latest = latest.where(JobRunRow.job.in_(list(jobs)))
    if state is not None:
        latest = latest.where(JobRunRow.state == state.value)
    sub = latest.subquery()
    query = select(JobRunRow).join(
        sub, (JobRunRow.job == sub.c.job) & (JobRunRow.scheduled_for == sub.c.at)
    )
    return {row.job: row for row in session.scalars(query)}


# -- system job definitions ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobDefault:
    """A system job as first seeded: later edits through the API win over these values."""

    name: str
    kind: str
    interval_s: float
    enabled: bool = True
    params: dict[str, Any] | None = None


def seed_jobs(session: Session, defaults: Iterable[JobDefault], *, actor: str) -> list[str]:
    """Insert the system jobs that have no row yet (first start, or a job added by an
    upgrade); existing rows keep their edited values. Returns the names inserted."""
    wanted = list(defaults)
    have = set(
        session.scalars(select(JobRow.name).where(JobRow.name.in_([d.name for d in wanted])))
    )
    added: list[str] = []
    for default in wanted:
        if default.name in have:
            continue
        row = JobRow(
            name=default.name,
            kind=default.kind,
            interval_s=default.interval_s,
            enabled=default.enabled,
            params=default.params or {},
            updated_by=actor,
        )
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError:
            continue  # another replica seeded it at the same moment
        added.append(default.name)
    return added


def list_jobs(session: Session) -> list[JobRow]:
    return list(session.scalars(select(JobRow).order_by(JobRow.name)))


def get_job(session: Session, name: str) -> JobRow:
    row = session.get(JobRow, name)
    if row is None:
        known = ", ".join(session.scalars(select(JobRow.name).order_by(JobRow.name)))
        raise NotFoundError(f"job {name!r} not found (known: {known or 'none'})")
    return row


def update_job(
    session: Session,
    name: str,
    *,
    actor: str,
    interval_s: float | None = None,
    enabled: bool | None = None,
) -> JobRow:
    """Change a job's interval or switch it on or off; audited. The leader picks the change
    up at its next refresh (it polls :func:`jobs_version`)."""
    row = get_job(session, name)
    changed: dict[str, Any] = {}
    if interval_s is not None and interval_s != row.interval_s:
        changed["interval_s"] = {"from": row.interval_s, "to": interval_s}
        row.interval_s = interval_s
    if enabled is not None and enabled != row.enabled:
        changed["enabled"] = {"from": row.enabled, "to": enabled}
        row.enabled = enabled
    if changed:
        row.updated_by = actor
        row.updated = utcnow()
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="job.update",
            target_type="job",
            target_id=name,
            detail=changed,
        )
    return row


def jobs_version(session: Session) -> tuple[int, datetime | None]:
    """(row count, newest ``updated``) of the job definitions: changes when any is edited."""
    count, newest = session.execute(select(func.count(), func.max(JobRow.updated))).one()
    return int(count), newest


def discard_run(session: Session, run: JobRunRow, *, fence: Fence | None = None) -> None:
    """Delete a ``started`` run that turned out to do nothing worth keeping (an idle firing of
    a frequent job). The firing time is past, so nobody fires it again; the fence is checked
    as for :func:`finish_run`."""
    if fence is None and run.fence_token is not None and run.holder is not None:
        fence = Fence(LEADER_LEASE, run.holder, run.fence_token)
    if fence is not None:
        check_fence(session, fence)
    session.execute(
        delete(JobRunRow).where(
            JobRunRow.id == run.id, JobRunRow.state == JobRunState.started.value
        )
    )


def fail_abandoned_runs(session: Session, fence: Fence) -> int:
    """Mark ``started`` runs fenced by an older token of ``fence``'s lease as failed: their
    leader lost the lease mid-run and will never finish them. Called by a new leader.

    A run that started a tuning run is left alone: the tuning run outlives its leader (it
    has its own lease) and the schedules' settle job finishes the job run when it ends."""
    rows = list(
        session.scalars(
            select(JobRunRow).where(
                JobRunRow.state == JobRunState.started.value,
                JobRunRow.fence_token.is_not(None),
                JobRunRow.fence_token < fence.token,
                JobRunRow.tuning_run_id.is_(None),
            )
        )
    )
    for row in rows:
        transition(
            session,
            row,
            JobRunState.failed,
            lifecycle=JOB_RUN_LIFECYCLE,
            actor=fence.holder,
            values={"error": f"abandoned: its leader lost the lease to {fence.holder}"},
            detail={"job": row.job},
        )
    return len(rows)


def prune_runs(session: Session, *, before: datetime) -> int:
    """Delete finished job runs scheduled before ``before`` (the retention job's last step)."""
    result = session.execute(
        delete(JobRunRow).where(
            JobRunRow.scheduled_for < before, JobRunRow.state != JobRunState.started.value
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
