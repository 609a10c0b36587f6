"""The scheduler inside ``cplane up``: one leader among the replicas runs the leader jobs,
every process runs its host-local ones.

Leadership is a lease row (``controlplane.store.jobs``): each process tries to take or renew
it every ``lease_s / 3`` from a :class:`~controlplane.store.leases.Lease` thread. The holder
loads the leader jobs into APScheduler; a process that fails to renew drops them at once, and
any write it still has in flight is refused by the fencing token. Leadership is believed only
after the lease transaction commits, and only until ``lease_s`` after the attempt began (a
process cut off from the database stops firing by itself).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine
from sqlalchemy import event
from sqlalchemy.orm import Session

from controlplane.domain import ConflictError
from controlplane.domain import Fence
from controlplane.domain import FencedOutError
from controlplane.domain import JobScope
from controlplane.domain import NotFoundError
from controlplane.engines import adapter_for
from controlplane.guard import GuardService
from controlplane.guard.runner import AdapterFactory
from controlplane.scheduler._executor import FiringExecutor
from controlplane.scheduler._metrics import SchedulerMetrics
from controlplane.scheduler._system_jobs import SystemJobSource
from controlplane.scheduler._system_jobs import system_defaults
from controlplane.scheduler._types import Clock
from controlplane.scheduler._types import Firing
from controlplane.scheduler._types import JobSource
from controlplane.scheduler._types import Outcome
from controlplane.scheduler._types import ScheduledJob
from controlplane.settings import Settings
from controlplane.store import jobs
from controlplane.store.base import utcnow
from controlplane.store.database import SessionFactory
from controlplane.store.leases import Lease
from tuner import TuningService

log = logging.getLogger("controlplane.scheduler")

REFRESH_JOB = "__refresh"


def default_holder() -> str:
    """This process's name on the lease: host, pid and a random tag (pids are reused)."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True)
class JobStatus:
    """A job as this process schedules it now."""

    id: str
    scope: JobScope
    next_run_time: datetime | None


class SchedulerService:
    """Owns the APScheduler instance, the leader lease and the job sources.

    ``guard`` / ``tuning`` / ``adapter_factory`` are what jobs act through (the reconcile job
    uses the guard; tuning schedules submit runs to ``tuning``); sources reach them as the
    service's attributes. ``clock`` times the lease and is every firing's ``now``.
    ``metrics`` is where it counts (the API passes one registered on its ``/metrics``).
    """

    def __init__(
        self,
        sessions: SessionFactory,
        settings: Settings,
        *,
        guard: GuardService | None = None,
        tuning: TuningService | None = None,
        adapter_factory: AdapterFactory = adapter_for,
        clock: Clock = utcnow,
        metrics: SchedulerMetrics | None = None,
        holder: str | None = None,
        max_workers: int = 8,
        system_jobs: bool = True,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.policy = settings.scheduler
        self.guard = guard
        self.tuning = tuning
        self.adapter_factory = adapter_factory
        self.holder = holder or default_holder()
        self.metrics = metrics or SchedulerMetrics()
        self._clock = clock
        self._lock = threading.RLock()
        self._sources: list[JobSource] = []
        self._versions: dict[str, Hashable] = {}
        self._loaded: dict[str, ScheduledJob] = {}
        self._by_source: dict[str, set[str]] = {}
        self._fence: Fence | None = None
        self._valid_until: datetime | None = None
        self._swept_token: int | None = None
        self._started = False
        self._executor = FiringExecutor(max_workers, on_missed=self._missed)
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": self._executor},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": int(max(1, self.policy.misfire_grace_s)),
            },
        )
        self._lease = Lease(
            sessions,
            self._stamp,
            every_s=self.policy.lease_s / 3,
            name="scheduler-leader",
            stamp_at_start=True,
        )
        if system_jobs:
            self.register_source(SystemJobSource(self, JobScope.leader))
            self.register_source(SystemJobSource(self, JobScope.every_process))

    @property
    def db_engine(self) -> Engine:
        bind = self.sessions.kw["bind"]
        assert isinstance(bind, Engine)
        return bind

    # -- sources -------------------------------------------------------------------------

    def register_source(self, source: JobSource) -> None:
        """Add a source of jobs; it is read at the next refresh (at once when started)."""
        with self._lock:
            if any(s.name == source.name for s in self._sources):
                raise ConflictError(f"a job source named {source.name!r} is registered")
            self._sources.append(source)
        self.refresh_soon()

    def refresh_soon(self) -> None:
        """Re-read the sources now rather than at the next ``refresh_s`` (e.g. after this
        process's API changed a definition)."""
        if not self._started:
            return
        with self._lock:
            self._versions.clear()
        try:
            self._scheduler.modify_job(REFRESH_JOB, next_run_time=datetime.now(UTC))
        except JobLookupError:
            pass  # shutting down

    # -- lifecycle -----------------------------------------------------------------------

    def seed(self) -> None:
        """Insert the system jobs that have no row yet (first start, or added by an upgrade)."""
        with self.sessions() as session, session.begin():
            added = jobs.seed_jobs(session, system_defaults(self.policy), actor="scheduler")
        if added:
            log.info("scheduler: seeded system jobs %s", ", ".join(added))

    def start(self) -> None:
        """Seed the system jobs, start timing, and take part in the election."""
        self.seed()
        logging.getLogger("apscheduler").setLevel(logging.WARNING)  # a line per firing
        self._scheduler.start()
        self._started = True
        self._scheduler.add_job(
            self._refresh_job,
            IntervalTrigger(seconds=self.policy.refresh_s, timezone=UTC),
            id=REFRESH_JOB,
            name=REFRESH_JOB,
            next_run_time=datetime.now(UTC),
            misfire_grace_time=None,
        )
        self._lease.start()

    def shutdown(self) -> None:
        """Stop timing, wait for firings in progress, and hand the lease back so a successor
        need not wait for it to expire."""
        self._lease.stop()
        if self._started:
            self._started = False
            # Not wait=True: APScheduler waits for the executor while holding its job-store
            # lock, which a firing in progress (a refresh adding jobs) may be waiting for.
            self._scheduler.shutdown(wait=False)
            self._executor.join()
        with self._lock:
            sources = list(self._sources)
        for source in sources:
            close = getattr(source, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:  # noqa: BLE001 - shutdown goes on for the others
                    log.warning("scheduler: closing source %s failed", source.name, exc_info=True)
        with self._lock:
            held = self._fence is not None
            self._fence = None
        self.metrics.is_leader.set(0)
        if held:
            try:
                with self.sessions() as session, session.begin():
                    jobs.release(session, jobs.LEADER_LEASE, self.holder)
            except Exception:  # noqa: BLE001 - the lease then simply expires
                log.warning("scheduler: could not release the leader lease", exc_info=True)

    # -- leadership ----------------------------------------------------------------------

    @property
    def fence(self) -> Fence | None:
        """The leader lease's fence while this process holds it; ``None`` otherwise."""
        with self._lock:
            if self._fence is None or self._valid_until is None:
                return None
            if self._clock() >= self._valid_until:
                return None
            return self._fence

    @property
    def is_leader(self) -> bool:
        return self.fence is not None

    def elect(self) -> bool:
        """One lease attempt now, in the caller's thread (the lease thread makes one every
        ``lease_s / 3``); whether this process leads afterwards."""
        with self.sessions() as session, session.begin():
            self._stamp(session)
        return self.is_leader

    def _stamp(self, session: Session) -> bool:
        began = self._clock()
        token = jobs.acquire_or_renew(
            session, jobs.LEADER_LEASE, self.holder, self.policy.lease_s, began
        )
        until = began + timedelta(seconds=self.policy.lease_s)

        def committed(_session: Session) -> None:
            self._apply_lease(token, until)

        event.listen(session, "after_commit", committed, once=True)
        return True

    def _apply_lease(self, token: int | None, until: datetime) -> None:
        with self._lock:
            before = self._fence
            if token is None:
                self._fence, self._valid_until = None, None
            else:
                self._fence = Fence(jobs.LEADER_LEASE, self.holder, token)
                self._valid_until = until
            after = self._fence
        if before == after:
            return
        if after is not None:
            self.metrics.is_leader.set(1)
            log.info("scheduler: %s leads (token %d)", self.holder, after.token)
            self.refresh_soon()
        else:
            self.metrics.is_leader.set(0)
            log.info("scheduler: %s lost the leader lease", self.holder)
            self._drop_scope(JobScope.leader)

    # -- loading -------------------------------------------------------------------------

    def _refresh_job(self, _run_time: datetime | None = None) -> None:
        try:
            self.refresh()
        except Exception:  # noqa: BLE001 - retried at the next refresh
            log.warning("scheduler: refresh failed", exc_info=True)

    def refresh(self) -> None:
        """Bring the scheduled jobs in line with the sources (re-reading only those whose
        version changed), dropping leader jobs if the lease has lapsed."""
        fence = self.fence
        if fence is None:
            self._drop_scope(JobScope.leader)
        elif self._swept_token != fence.token:
            with self.sessions() as session, session.begin():
                failed = jobs.fail_abandoned_runs(session, fence)
            self._swept_token = fence.token
            if failed:
                log.info("scheduler: %d runs of a previous leader marked failed", failed)
        with self._lock:
            sources = list(self._sources)
        for source in sources:
            if source.scope == JobScope.leader and fence is None:
                continue
            try:
                with self.sessions() as session, session.begin():
                    version = source.version(session)
                    if self._versions.get(source.name) == version:
                        continue
                    loaded = source.load(session)
            except Exception:  # noqa: BLE001 - one broken source must not stop the others
                log.warning("scheduler: job source %s failed to load", source.name, exc_info=True)
                continue
            self._sync(source, loaded)
            with self._lock:
                self._versions[source.name] = version

    def _sync(self, source: JobSource, loaded: list[ScheduledJob]) -> None:
        suffix = f"@{self.holder}" if source.scope == JobScope.every_process else ""
        wanted = {
            j.id: dataclasses.replace(j, scope=source.scope, run_suffix=suffix) for j in loaded
        }
        with self._lock:
            mine = self._by_source.setdefault(source.name, set())
            for job_id in mine - wanted.keys():
                self._remove(job_id)
            for job_id, job in wanted.items():
                previous = self._loaded.get(job_id)
                if previous is None or previous.signature != job.signature:
                    self._scheduler.add_job(
                        self._on_time,
                        job.trigger,
                        args=(job_id,),
                        id=job_id,
                        name=job_id,
                        replace_existing=True,
                    )
                self._loaded[job_id] = job
            self._by_source[source.name] = set(wanted)

    def _remove(self, job_id: str) -> None:
        self._loaded.pop(job_id, None)
        try:
            self._scheduler.remove_job(job_id)
        except JobLookupError:
            pass

    def _drop_scope(self, scope: JobScope) -> None:
        with self._lock:
            names = {s.name for s in self._sources if s.scope == scope}
            for name in names:
                for job_id in self._by_source.pop(name, set()):
                    self._remove(job_id)
                self._versions.pop(name, None)

    # -- firing --------------------------------------------------------------------------

    def _on_time(self, job_id: str, run_time: datetime | None = None) -> None:
        # ``run_time`` comes from FiringExecutor; the default only satisfies APScheduler's
        # signature check at add_job.
        self.fire(job_id, run_time or self._clock())

    def fire(self, job_id: str, scheduled_for: datetime) -> Outcome:
        """Run one firing of a loaded job now, as if APScheduler had fired it for
        ``scheduled_for``; what the timer calls, and what tests call directly.

        Raises:
            NotFoundError: no job of that id is loaded in this process.
        """
        with self._lock:
            job = self._loaded.get(job_id)
        if job is None:
            raise NotFoundError(f"job {job_id!r} is not scheduled in this process")
        lateness = (self._clock() - scheduled_for).total_seconds()
        self.metrics.lateness.observe(max(0.0, lateness))
        fence = None
        if job.scope == JobScope.leader:
            fence = self.fence
            if fence is None:
                return self._count(job, Outcome("not_leader"))
        firing = Firing(
            job=job.run_name,
            scheduled_for=scheduled_for,
            fence=fence,
            sessions=self.sessions,
            now=self._clock,
            schedule_id=job.schedule_id,
        )
        try:
            outcome = job.run(firing)
        except FencedOutError as exc:
            log.info("scheduler: firing of %s refused: %s", job.id, exc)
            outcome = Outcome("fenced", error=str(exc))
        except Exception as exc:  # noqa: BLE001 - a job's bug must not stop the timer
            log.exception("scheduler: job %s crashed", job.id)
            outcome = Outcome("failed", error=f"{type(exc).__name__}: {exc}")
        return self._count(job, outcome)

    def _missed(self, job_id: str, run_time: datetime) -> None:
        with self._lock:
            job = self._loaded.get(job_id)
        if job is not None:
            self._count(job, Outcome("missed"))

    def run_now(self, job_id: str) -> Outcome:
        """Fire a loaded job once, now (``scheduled_for`` = the clock, to the millisecond)."""
        now = self._clock()
        return self.fire(job_id, now.replace(microsecond=now.microsecond // 1000 * 1000))

    def _count(self, job: ScheduledJob, outcome: Outcome) -> Outcome:
        self.metrics.runs.labels(job.label, outcome.state).inc()
        if outcome.state == "skipped" and outcome.reason:
            self.metrics.skips.labels(job.label, outcome.reason).inc()
        if outcome.state in ("done", "idle"):
            self.metrics.last_success.labels(job.label).set(time.time())
        return outcome

    # -- introspection -------------------------------------------------------------------

    def scheduled(self) -> list[JobStatus]:
        """Every job scheduled in this process with its next run time."""
        with self._lock:
            loaded = dict(self._loaded)
        out = []
        for job_id, job in sorted(loaded.items()):
            aps: Any = self._scheduler.get_job(job_id)
            out.append(JobStatus(job_id, job.scope, getattr(aps, "next_run_time", None)))
        return out

    def next_run_time(self, job_id: str) -> datetime | None:
        # A job added before the scheduler starts has no next run time yet.
        aps: Any = self._scheduler.get_job(job_id)
        return getattr(aps, "next_run_time", None)
