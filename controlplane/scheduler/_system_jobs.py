"""The control plane's own periodic work, as job definitions in the ``jobs`` table.

- ``retention``: raw samples older than ``CP_COLLECTORS__RAW_RETENTION_S`` fold into one-minute
  rollups, rollups older than ``CP_COLLECTORS__ROLLUP_RETENTION_S`` and job runs older than
  that are deleted, and so are web UI sessions that ended more than a day ago. Every firing
  is recorded (it runs every few minutes).
- ``sweep_tuning``: tuning runs whose lease went stale (``CP_TUNER__STALE_AFTER_S``) become
  ``interrupted``, resumable, while the server runs, not only at the next start.
- ``reconcile``: engines left mid-rollout by a dead guard go back to last known good.
- ``chaos_sweep``: this host's chaos leftovers (tc / nft rules whose owner and watchdog are
  gone). Host-local, so it runs in **every** process, not only on the leader.

The three frequent ones record a job run only when they changed something; idle firings are
counted on ``/metrics`` (outcome ``idle``) so the table does not grow by thousands of empty
rows a day.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING
from typing import Any

from sqlalchemy.orm import Session

from controlplane import chaos
from controlplane.domain import JobScope
from controlplane.guard.events import EventBus
from controlplane.guard.reconcile import reconcile
from controlplane.scheduler._record import record_firing
from controlplane.scheduler._triggers import interval_trigger
from controlplane.scheduler._types import Firing
from controlplane.scheduler._types import Outcome
from controlplane.scheduler._types import ScheduledJob
from controlplane.settings import SchedulerSettings
from controlplane.store import jobs
from controlplane.store import samples
from controlplane.store import ui_sessions
from tuner import Tuner
from tuner import storage_url
from tuner import sweep_orphaned_runs

if TYPE_CHECKING:
    from controlplane.scheduler._service import SchedulerService


@dataclass(frozen=True, slots=True)
class SystemKind:
    scope: JobScope
    keep_idle: bool
    work: Callable[[SchedulerService, Firing], dict[str, Any]]


def _retention(service: SchedulerService, firing: Firing) -> dict[str, Any]:
    policy = service.settings.collectors
    now = firing.now()
    with firing.sessions() as session, session.begin():
        result = samples.rollup_and_prune(
            session,
            now=now.timestamp(),
            raw_retention_s=policy.raw_retention_s,
            rollup_retention_s=policy.rollup_retention_s,
        )
        runs = jobs.prune_runs(session, before=now - timedelta(seconds=policy.rollup_retention_s))
        ended = ui_sessions.prune(session, before=now - timedelta(days=1))
    return {
        "rolled_up_minutes": result.rolled_up_minutes,
        "raw_deleted": result.raw_deleted,
        "rollups_deleted": result.rollups_deleted,
        "job_runs_deleted": runs,
        "ui_sessions_deleted": ended,
    }


def _sweep_tuning(service: SchedulerService, firing: Firing) -> dict[str, Any]:
    swept = sweep_orphaned_runs(
        firing.sessions,
        url=storage_url(service.db_engine),
        stale_after_s=service.settings.tuner.stale_after_s,
        actor="scheduler",
        tuner=Tuner(
            session_factory=firing.sessions,
            storage_url=storage_url(service.db_engine),
            settings=service.settings,
            adapter_factory=service.adapter_factory,
        ),
    )
    return {"interrupted": len(swept), "run_ids": swept}


def _reconcile(service: SchedulerService, firing: Firing) -> dict[str, Any]:
    if service.guard is not None:
        settled = service.guard.reconcile_now()
    else:
        settled = reconcile(
            firing.sessions,
            policy=service.settings.guard,
            adapter_factory=service.adapter_factory,
            events=EventBus(),
        )
    return {"reconciled": len(settled), "rollout_ids": settled}


def _chaos_sweep(service: SchedulerService, firing: Firing) -> dict[str, Any]:
    settings = service.settings
    log = chaos.sweep_all(settings.chaos, settings.chaos_state_dir, scan=False)
    return {"swept": len(log), "log": log}


KINDS: dict[str, SystemKind] = {
    "retention": SystemKind(JobScope.leader, True, _retention),
    "sweep_tuning": SystemKind(JobScope.leader, False, _sweep_tuning),
    "reconcile": SystemKind(JobScope.leader, False, _reconcile),
    "chaos_sweep": SystemKind(JobScope.every_process, False, _chaos_sweep),
}


def system_defaults(settings: SchedulerSettings) -> list[jobs.JobDefault]:
    """The system jobs seeded on first start (one job per kind, named after it)."""
    intervals = {
        "retention": settings.retention_interval_s,
        "sweep_tuning": settings.sweep_interval_s,
        "reconcile": settings.reconcile_interval_s,
        "chaos_sweep": settings.chaos_sweep_interval_s,
    }
    return [jobs.JobDefault(name, name, interval) for name, interval in intervals.items()]


class SystemJobSource:
    """The ``jobs`` table's rows of one scope, as scheduled jobs (disabled ones left out)."""

    def __init__(self, service: SchedulerService, scope: JobScope) -> None:
        self.name = f"system:{scope.value}"
        self.scope = scope
        self._service = service

    def version(self, session: Session) -> Hashable:
        return jobs.jobs_version(session)

    def load(self, session: Session) -> list[ScheduledJob]:
        out = []
        for row in jobs.list_jobs(session):
            kind = KINDS.get(row.kind)
            if kind is None or kind.scope != self.scope or not row.enabled:
                continue
            out.append(
                ScheduledJob(
                    id=row.name,
                    trigger=interval_trigger(row.interval_s),
                    run=partial(self._run, kind),
                    signature=(row.kind, row.interval_s),
                    scope=kind.scope,
                )
            )
        return out

    def _run(self, kind: SystemKind, firing: Firing) -> Outcome:
        return record_firing(firing, partial(kind.work, self._service), keep_idle=kind.keep_idle)
