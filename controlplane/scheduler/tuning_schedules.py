"""Scheduled tuning runs: refusing a bad schedule, firing one, and settling its job runs.

A firing is decided in this order, and every outcome is a stored job run:

1. the skip rules (``engine_busy``: a rollout or tuning run in flight; ``engine_unhealthy``:
   the adapter's health check fails; ``outside_window``: the scheduled time, in the
   schedule's timezone, is outside its maintenance window; ``low_traffic``: live load mode
   and the stored request rate is below the floor) give a ``skipped`` run with the code and a
   sentence saying why;
2. otherwise a ``started`` job run and a pending tuning run are written in one transaction
   under the leader's fence (so a deposed leader records nothing), and the tuning run is
   handed to the process's tuning service;
3. a request the tuner refuses at that moment (an SLO removed since, a knob gone) makes the
   job run ``failed`` with the reason.

A started job run ends with its tuning run: :func:`settle` (a periodic leader job) moves it
to ``done`` when the tuning run is done and to ``failed`` when it failed, was stopped or was
interrupted. Polling rather than a completion hook on the tuning service because the run may
finish in another process (resumed from the CLI, or after a failover).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from functools import partial
from typing import Any

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select
from sqlalchemy.orm import Session

from collectors import increase
from controlplane.domain import ConflictError
from controlplane.domain import DomainError
from controlplane.domain import EngineTarget
from controlplane.domain import Fence
from controlplane.domain import FencedOutError
from controlplane.domain import JobRunState
from controlplane.domain import JobScope
from controlplane.domain import NotFoundError
from controlplane.domain import ValidationError
from controlplane.engines.base import EngineAdapter
from controlplane.scheduler._service import SchedulerService
from controlplane.scheduler._triggers import interval_trigger
from controlplane.scheduler._types import Firing
from controlplane.scheduler._types import Outcome
from controlplane.scheduler._types import ScheduledJob
from controlplane.schemas.schedules import ScheduleCreate
from controlplane.schemas.schedules import ScheduleSkip
from controlplane.schemas.schedules import fire_times
from controlplane.schemas.schedules import parse_cron
from controlplane.schemas.schedules import parse_timezone
from controlplane.schemas.tuning import TuningCreate
from controlplane.settings import Settings
from controlplane.store import engines
from controlplane.store import jobs
from controlplane.store import rollouts
from controlplane.store import samples
from controlplane.store import schedules
from controlplane.store import tuning
from controlplane.store.base import utcnow
from controlplane.store.database import SessionFactory
from controlplane.store.models import JobRunRow
from controlplane.store.models import ScheduleRow
from controlplane.store.models import TuningRunRow
from tuner import check_request
from tuner import start_run

log = logging.getLogger("controlplane.scheduler")

AdapterFactory = Callable[[EngineTarget], EngineAdapter]
Submit = Callable[[int], object]

SKIP_REASONS = ("engine_busy", "engine_unhealthy", "outside_window", "low_traffic")
FREQUENCY_HORIZON = timedelta(days=8)
TRAFFIC_METRICS = ("requests_succeeded_total", "requests_failed_total")


@dataclass(frozen=True)
class FireResult:
    """What one firing did: ``started``, ``skipped`` (with ``reason``), ``failed``,
    ``duplicate`` (the firing was already recorded, by this process or another), or
    ``paused`` (a timer firing of a schedule paused since it was loaded: nothing recorded)."""

    schedule_id: int
    scheduled_for: datetime
    state: str
    message: str
    job_run_id: int | None = None
    reason: str | None = None
    tuning_run_id: int | None = None


# -- refusing a bad schedule --------------------------------------------------------------


def check_frequency(trigger: CronTrigger, *, floor_s: float, now: datetime) -> None:
    """Refuse a cron that would fire twice within ``floor_s`` anywhere in the next 8 days
    (a week covers weekday rules; the day more covers a DST switch at the edge).

    Raises:
        ValidationError: on field ``cron``, naming the two fire times.
    """
    horizon = now + FREQUENCY_HORIZON
    limit = int(FREQUENCY_HORIZON.total_seconds() // floor_s) + 2
    times = fire_times(trigger, now, limit=limit, until=horizon)
    for a, b in zip(times, times[1:], strict=False):
        if a > horizon:
            break
        # In UTC: between two times of one zone Python subtracts wall clocks.
        if (b.astimezone(UTC) - a.astimezone(UTC)).total_seconds() < floor_s:
            raise ValidationError(
                f"cron fires more often than every {_span(floor_s)} (at {a:%Y-%m-%d %H:%M} "
                f"and {b:%H:%M} {b.tzname()}); tuning schedules are limited to one run per "
                f"{_span(floor_s)} (CP_SCHEDULER__MIN_SCHEDULE_INTERVAL_S)",
                field="cron",
            )


def _span(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def create_schedule(
    session: Session,
    data: ScheduleCreate,
    *,
    settings: Settings,
    adapter_factory: AdapterFactory,
    actor: str,
    now: datetime | None = None,
) -> ScheduleRow:
    """Validate everything a firing will need and record the schedule, or record nothing.

    The tuning spec gets the checks ``POST /tuning-runs`` applies (the schema on the way in,
    then the engine's SLOs and knobs); only "the engine is busy right now" is left to the
    firing, where it is a skip reason rather than an error.

    Raises:
        ValidationError: unknown engine (field ``engine``), cron, timezone, a spec the tuner
            refuses, a traffic floor without live load, or a cron firing too often.
        ConflictError: the schedule name is taken.
        EngineUnreachableError: the engine's search space could not be read.
    """
    try:
        engine = engines.get_engine(session, data.engine)
    except NotFoundError as exc:
        raise ValidationError(str(exc), field="engine") from exc
    check_frequency(
        data.trigger(),
        floor_s=settings.scheduler.min_schedule_interval_s,
        now=now or utcnow(),
    )
    if data.skip.min_rps is not None and data.spec.load != "live":
        raise ValidationError(
            "a traffic floor (min_rps) applies to live load only; this spec's load is "
            f"{data.spec.load!r}",
            field="skip.min_rps",
        )
    adapter = adapter_factory(engines.engine_target(engine))
    try:
        check_request(session, engine=engine, request=data.spec, adapter=adapter)
    except ValidationError as exc:
        # The search space names the knob itself; the schedule's field is the knob list.
        field = "knobs" if exc.field in data.spec.knobs else exc.field
        where = f"spec.{field}" if field in TuningCreate.model_fields else "spec"
        raise ValidationError(str(exc), field=where) from exc
    finally:
        adapter.close()
    return schedules.create_schedule(
        session,
        name=data.name,
        engine_id=engine.id,
        engine_name=engine.name,
        cron=data.cron,
        timezone=data.timezone,
        spec=data.spec.model_dump(mode="json"),
        skip=data.skip.model_dump(mode="json", exclude_defaults=True),
        paused=data.paused,
        actor=actor,
    )


def trigger_of(row: ScheduleRow) -> CronTrigger:
    return parse_cron(row.cron, parse_timezone(row.timezone))


def next_fire(row: ScheduleRow, now: datetime | None = None) -> datetime | None:
    """The schedule's next fire time after ``now``; ``None`` while it is paused."""
    if row.paused:
        return None
    times = fire_times(trigger_of(row), now or utcnow(), limit=1)
    return times[0] if times else None


# -- firing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Loaded:
    schedule_id: int
    name: str
    engine_id: int
    engine_name: str
    target: EngineTarget
    timezone: str
    spec: TuningCreate
    skip: ScheduleSkip
    paused: bool


def _load(sessions: SessionFactory, schedule_id: int) -> _Loaded:
    with sessions() as session, session.begin():
        row = schedules.get_schedule(session, schedule_id)
        engine = engines.get_engine(session, row.engine_id)
        return _Loaded(
            schedule_id=row.id,
            name=row.name,
            engine_id=engine.id,
            engine_name=engine.name,
            target=engines.engine_target(engine),
            timezone=row.timezone,
            spec=TuningCreate.model_validate(row.spec),
            skip=ScheduleSkip.model_validate(row.skip),
            paused=row.paused,
        )


def fire(
    sessions: SessionFactory,
    schedule_id: int,
    scheduled_for: datetime,
    *,
    settings: Settings,
    adapter_factory: AdapterFactory,
    submit: Submit,
    fence: Fence | None,
    force: bool = False,
    now: datetime | None = None,
) -> FireResult:
    """One firing of a schedule at ``scheduled_for``; see the module docstring.

    ``force`` (an operator's run-now) ignores the maintenance window and the traffic floor;
    a busy or unhealthy engine is still skipped. ``fence`` is ``None`` only outside the
    scheduler (a run-now from the CLI), where no leader decides.

    Raises:
        FencedOutError: this process lost the leader lease; nothing was written.
    """
    loaded = _load(sessions, schedule_id)
    if loaded.paused and fence is not None:
        # Paused since the leader last read the schedules: the timer's firing is void (an
        # operator's run-now, unfenced, still fires a paused schedule).
        return FireResult(schedule_id, scheduled_for, "paused", "the schedule is paused")
    adapter = adapter_factory(loaded.target)
    try:
        skip = _skip_reason(sessions, loaded, adapter, scheduled_for, force=force, now=now)
        if skip is not None:
            return _skip(sessions, loaded, scheduled_for, fence, *skip)
        try:
            started = _start(sessions, loaded, adapter, scheduled_for, settings, fence, force)
        except _BecameBusy as exc:
            return _skip(sessions, loaded, scheduled_for, fence, "engine_busy", str(exc))
    finally:
        adapter.close()
    if started.state != "started":
        return started
    log.info("schedule %s: %s", loaded.name, started.message)
    assert started.tuning_run_id is not None
    submit(started.tuning_run_id)
    return started


class _BecameBusy(Exception):
    """The engine became busy between the skip check and the start: roll the job run back
    and record a skip instead."""


def _start(
    sessions: SessionFactory,
    loaded: _Loaded,
    adapter: EngineAdapter,
    scheduled_for: datetime,
    settings: Settings,
    fence: Fence | None,
    force: bool,
) -> FireResult:
    detail: dict[str, Any] = {"schedule": loaded.name, "engine": loaded.engine_name}
    if force:
        detail["forced"] = True
    with sessions() as session, session.begin():
        # The fence is checked here, in the transaction of the write, but not stamped on the
        # row: a stamped ``started`` run is failed as abandoned by the next leader, and this
        # one stays started for as long as its tuning run, which outlives a failover (it is
        # settled by ``schedule_settle`` under the leader of the day).
        if fence is not None:
            jobs.check_fence(session, fence)
            detail["leader"] = {"holder": fence.holder, "token": fence.token}
        job_run = jobs.start_run(
            session,
            job=schedules.job_name(loaded.schedule_id),
            scheduled_for=scheduled_for,
            fence=None,
            schedule_id=loaded.schedule_id,
            detail=detail,
        )
        if job_run is None:
            return _duplicate(loaded, scheduled_for)
        try:
            run = start_run(
                session,
                engine_ref=loaded.engine_id,
                request=loaded.spec,
                adapter=adapter,
                policy=settings.tuner,
                actor=f"schedule:{loaded.name}",
            )
        except FencedOutError:
            raise
        except ConflictError as exc:
            raise _BecameBusy(str(exc)) from exc
        except DomainError as exc:
            jobs.finish_run(session, job_run, JobRunState.failed, error=str(exc), fence=fence)
            log.warning("schedule %s: firing failed: %s", loaded.name, exc)
            return FireResult(
                loaded.schedule_id, scheduled_for, "failed", str(exc), job_run_id=job_run.id
            )
        job_run.tuning_run_id = run.id
        session.flush()
        return FireResult(
            loaded.schedule_id,
            scheduled_for,
            "started",
            f"tuning run {run.id} started on {loaded.engine_name}",
            job_run_id=job_run.id,
            tuning_run_id=run.id,
        )


def _skip_reason(
    sessions: SessionFactory,
    loaded: _Loaded,
    adapter: EngineAdapter,
    scheduled_for: datetime,
    *,
    force: bool,
    now: datetime | None,
) -> tuple[str, str] | None:
    with sessions() as session, session.begin():
        active = rollouts.active_rollout(session, loaded.engine_id)
        if active is not None:
            return "engine_busy", f"rollout {active.id} is {active.state}"
        busy = tuning.active_run(session, loaded.engine_id)
        if busy is not None:
            return "engine_busy", f"tuning run {busy.id} is {busy.state}"
    health = adapter.health()
    if not health.ok:
        return "engine_unhealthy", f"health check failed: {health.detail}"
    if force:
        return None
    window = loaded.skip.maintenance_window()
    if window is not None:
        local = scheduled_for.astimezone(parse_timezone(loaded.timezone))
        if not window.contains(local):
            return (
                "outside_window",
                f"{local:%a %H:%M} {local.tzname()} is outside the maintenance window "
                f"{window.spec()} ({loaded.timezone})",
            )
    floor = loaded.skip.min_rps
    if floor is not None and loaded.spec.load == "live":
        end = now or utcnow()
        with sessions() as session, session.begin():
            rps = traffic_rps(
                session, loaded.engine_name, end=end, window_s=loaded.skip.traffic_window_s
            )
        if rps is None:
            return (
                "low_traffic",
                f"no stored request samples in the last {loaded.skip.traffic_window_s:g} s "
                f"(floor {floor:g} req/s)",
            )
        if rps < floor:
            return (
                "low_traffic",
                f"traffic {rps:.2f} req/s over the last {loaded.skip.traffic_window_s:g} s "
                f"is below the floor of {floor:g} req/s",
            )
    return None


def _skip(
    sessions: SessionFactory,
    loaded: _Loaded,
    scheduled_for: datetime,
    fence: Fence | None,
    reason: str,
    message: str,
) -> FireResult:
    with sessions() as session, session.begin():
        row = jobs.skip_run(
            session,
            job=schedules.job_name(loaded.schedule_id),
            scheduled_for=scheduled_for,
            fence=fence,
            reason=reason,
            detail={"schedule": loaded.name, "engine": loaded.engine_name, "message": message},
            schedule_id=loaded.schedule_id,
        )
        if row is None:
            return _duplicate(loaded, scheduled_for)
        run_id = row.id
    log.info("schedule %s: skipped (%s): %s", loaded.name, reason, message)
    return FireResult(
        loaded.schedule_id, scheduled_for, "skipped", message, job_run_id=run_id, reason=reason
    )


def _duplicate(loaded: _Loaded, scheduled_for: datetime) -> FireResult:
    return FireResult(
        loaded.schedule_id,
        scheduled_for,
        "duplicate",
        f"the firing at {scheduled_for.isoformat()} is already recorded",
    )


def traffic_rps(session: Session, source: str, *, end: datetime, window_s: float) -> float | None:
    """Requests finished per second (succeeded + failed) over ``window_s`` before ``end``,
    from the stored counter samples; ``None`` with fewer than two samples of any series."""
    stop = end.timestamp()
    start = stop - window_s
    total = 0.0
    span = 0.0
    for metric in TRAFFIC_METRICS:
        for series in samples.fetch_series(
            session, source=source, metric=metric, start=start, end=stop
        ):
            if len(series.points) < 2:
                continue
            total += increase([v for _, v in series.points])
            span = max(span, series.points[-1][0] - series.points[0][0])
    if span <= 0:
        return None
    return total / span


# -- settling ----------------------------------------------------------------------------


def settle(
    sessions: SessionFactory, *, fence: Fence | None, job_run_ids: Collection[int] | None = None
) -> list[int]:
    """Finish started schedule job runs (all, or ``job_run_ids``) whose tuning run has ended;
    the ids finished.

    Raises:
        FencedOutError: this process lost the leader lease.
    """
    finished: list[int] = []
    with sessions() as session, session.begin():
        query = (
            select(JobRunRow, TuningRunRow)
            .join(TuningRunRow, TuningRunRow.id == JobRunRow.tuning_run_id)
            .where(
                JobRunRow.state == JobRunState.started.value,
                JobRunRow.job.startswith("schedule:"),
                TuningRunRow.state.in_(tuning.TERMINAL_STATES),
            )
        )
        if job_run_ids is not None:
            query = query.where(JobRunRow.id.in_(list(job_run_ids)))
        pairs = session.execute(query).all()
        for job_run, run in pairs:
            result = run.result or {}
            detail = {"tuning_state": run.state}
            if result.get("improvement") is not None:
                detail["improvement"] = result["improvement"]
            if run.state == "done":
                jobs.finish_run(session, job_run, JobRunState.done, detail=detail, fence=fence)
            else:
                error = f"tuning run {run.id} {run.state}"
                if result.get("error"):
                    error += f": {result['error']}"
                jobs.finish_run(
                    session, job_run, JobRunState.failed, error=error, detail=detail, fence=fence
                )
            finished.append(job_run.id)
    return finished


# -- the scheduler's view ----------------------------------------------------------------

SETTLE_INTERVAL_S = 10.0


class TuningScheduleSource:
    """Every schedule that is not paused as a leader job ``schedule:<id>`` on its cron (in its
    timezone), plus ``schedule_settle``, which ends job runs whose tuning run has ended."""

    name = "tuning_schedules"
    scope = JobScope.leader

    def __init__(self, service: SchedulerService) -> None:
        self._service = service

    def version(self, session: Session) -> Hashable:
        return schedules.schedules_version(session)

    def load(self, session: Session) -> list[ScheduledJob]:
        loaded = [
            ScheduledJob(
                id="schedule_settle",
                trigger=interval_trigger(SETTLE_INTERVAL_S),
                run=self._settle,
                signature=SETTLE_INTERVAL_S,
            )
        ]
        for row in schedules.list_schedules(session):
            if row.paused:
                continue
            loaded.append(
                ScheduledJob(
                    id=schedules.job_name(row.id),
                    trigger=trigger_of(row),
                    run=partial(self._fire, row.id),
                    signature=(row.cron, row.timezone),
                    schedule_id=row.id,
                )
            )
        return loaded

    def _fire(self, schedule_id: int, firing: Firing) -> Outcome:
        service = self._service
        if service.tuning is None:
            return Outcome("failed", error="the tuning service is not running in this process")
        result = fire(
            firing.sessions,
            schedule_id,
            firing.scheduled_for,
            settings=service.settings,
            adapter_factory=service.adapter_factory,
            submit=service.tuning.submit,
            fence=firing.fence,
            now=firing.now(),
        )
        detail: dict[str, Any] = {"message": result.message}
        if result.state == "started":
            detail["tuning_run_id"] = result.tuning_run_id
            return Outcome("done", detail=detail, run_id=result.job_run_id)
        if result.state == "skipped":
            return Outcome(
                "skipped", reason=result.reason, detail=detail, run_id=result.job_run_id
            )
        if result.state == "failed":
            return Outcome("failed", error=result.message, run_id=result.job_run_id)
        if result.state == "paused":
            return Outcome("idle", detail=detail)
        return Outcome("duplicate", detail=detail)

    def _settle(self, firing: Firing) -> Outcome:
        finished = settle(firing.sessions, fence=firing.fence)
        return Outcome("idle", detail={"settled": finished})
