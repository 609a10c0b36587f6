"""What the scheduler times and what a firing reports: the contract between the scheduler
service and the code that defines jobs (the system jobs here, tuning schedules elsewhere).

A **job source** yields :class:`ScheduledJob` values from the control plane's tables; the
service polls each source's cheap :meth:`JobSource.version` every ``refresh_s`` and re-reads
its jobs only when it changed, so an edit made through any replica's API reaches the leader
within a refresh. APScheduler only does the timing: definitions live in our tables.

A job's ``run`` gets a :class:`Firing` and returns an :class:`Outcome`. It records the firing
itself, with ``controlplane.store.jobs`` (``start_run`` / ``skip_run`` / ``finish_run``),
passing ``firing.fence`` so a write decided under a lost lease is refused; or it wraps its
work in :func:`controlplane.scheduler.record_firing`, which does that for it.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Hashable
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from typing import Any
from typing import Literal
from typing import Protocol

from sqlalchemy.orm import Session

from controlplane.domain import Fence
from controlplane.domain import JobScope
from controlplane.store.database import SessionFactory

Clock = Callable[[], datetime]

OutcomeState = Literal[
    "done", "failed", "skipped", "idle", "duplicate", "fenced", "not_leader", "missed"
]


@dataclass(frozen=True, slots=True)
class Firing:
    """One firing of one job, as handed to its ``run``.

    ``fence`` is the leader lease the firing was decided under (``None`` for jobs that run in
    every process); pass it to every store write. ``job`` is the name its job run is recorded
    under (``ScheduledJob.run_name``). ``now`` is the service's clock: use it, not the wall
    clock, so tests control time.
    """

    job: str
    scheduled_for: datetime
    fence: Fence | None
    sessions: SessionFactory
    now: Clock
    schedule_id: int | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a firing came to, for ``/metrics`` and for callers of ``fire``.

    ``done`` / ``failed`` / ``skipped`` are recorded job runs (``reason`` is the skip code,
    e.g. ``engine_busy``); ``idle`` did nothing worth a row (counted only); ``duplicate``
    found the firing already recorded by someone else and did nothing; ``fenced`` lost the
    leader lease mid-firing (its writes were refused); ``not_leader`` was not run because
    this process does not hold the lease; ``missed`` came later than the misfire grace and was
    dropped without running (counted by the service, never returned by a job).
    """

    state: OutcomeState
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    run_id: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class ScheduledJob:
    """One job as the scheduler times it.

    ``id``: unique among all sources, the APScheduler job id and the ``job_runs.job`` name,
    at most 96 characters (a system job's name; ``schedule:<id>`` for a tuning schedule).
    ``trigger``: an APScheduler 3 trigger, e.g. ``CronTrigger.from_crontab(cron,
    timezone=ZoneInfo(tz))`` or :func:`controlplane.scheduler.interval_trigger` (aligned to
    a fixed epoch, so every replica computes the same firing times). ``signature``: any
    hashable that changes exactly when the job must be rescheduled (cron, timezone, paused,
    interval ...); an unchanged signature keeps the job's next run time. ``metric_job``: the
    ``job`` label on ``/metrics`` (default ``id``).
    """

    id: str
    trigger: Any
    run: Callable[[Firing], Outcome]
    signature: Hashable
    scope: JobScope = JobScope.leader
    schedule_id: int | None = None
    metric_job: str | None = None
    run_suffix: str = ""

    @property
    def label(self) -> str:
        return self.metric_job or self.id

    @property
    def run_name(self) -> str:
        """The ``job_runs.job`` value: ``id``, plus ``@<process>`` for every-process jobs."""
        return self.id + self.run_suffix


class JobSource(Protocol):
    """A set of jobs kept in the database: register one with
    ``SchedulerService.register_source`` (before or after ``start``).

    ``scope``: where all of its jobs run; a ``leader`` source is read only by the leader.
    ``version(session)``: a cheap query (e.g. ``SELECT count(*), max(updated)``) whose value
    changes whenever a job is added, edited or removed. ``load(session)``: every job that
    should be scheduled now (leave out paused or disabled ones). A source that holds
    resources (threads, clients) may also define ``close()``: the service calls it once at
    shutdown, after the last firing ended.
    """

    name: str
    scope: JobScope

    def version(self, session: Session) -> Hashable: ...

    def load(self, session: Session) -> list[ScheduledJob]: ...
