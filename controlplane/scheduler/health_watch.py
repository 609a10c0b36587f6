"""The health watch: after a change commits, real inference requests; repeated failures roll
the engine back to the config it served before the change, through the guard.

The field's rule, per engine (settings, with stored overrides): every ``interval_s`` the
engine gets one tiny greedy completion (:meth:`EngineAdapter.check_inference`); ``failures``
failed checks in a row (a timeout, an error, or an answer of the wrong shape) within
``window_s`` of the commit start a rollout with reason ``health`` back to the committed
rollout's from-config, which the guard applies with rollback retries and without a baseline
or bake (the engine is failing: there is nothing to compare against), and emit a
``health.rollback`` event on the guard's event bus for on-call. One success resets the
count. A newer commit starts a new watch; a commit that is itself a health rollback is not
watched (rolling it back would restore the failing config). No engine is checked while a
rollout of it is in flight: the guard watches it then.

The leader runs :meth:`HealthWatch.tick` every ``tick_s``; the state is stored per engine
(under the leader's fence), so a new leader carries on the count. Time comes from the
caller (``now``), so the counting, the window and the reset are tested on a fake clock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from collections.abc import Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from sqlalchemy.orm import Session

from controlplane.domain import ConflictError
from controlplane.domain import EngineTarget
from controlplane.domain import Fence
from controlplane.domain import FencedOutError
from controlplane.domain import Health
from controlplane.domain import JobScope
from controlplane.engines.base import EngineAdapter
from controlplane.guard import EventBus
from controlplane.guard import GuardEvent
from controlplane.guard.runner import HEALTH_REASON
from controlplane.scheduler._service import SchedulerService
from controlplane.scheduler._triggers import interval_trigger
from controlplane.scheduler._types import Firing
from controlplane.scheduler._types import Outcome
from controlplane.scheduler._types import ScheduledJob
from controlplane.schemas.health_watch import HealthWatchRead
from controlplane.schemas.health_watch import HealthWatchUpdate
from controlplane.settings import HealthWatchSettings
from controlplane.store import configs
from controlplane.store import engines
from controlplane.store import health_watch as store
from controlplane.store import rollouts
from controlplane.store.base import utcnow
from controlplane.store.database import SessionFactory
from controlplane.store.models import HealthWatchRow

log = logging.getLogger("controlplane.scheduler")

AdapterFactory = Callable[[EngineTarget], EngineAdapter]
EVENT_KIND = "health.rollback"


@dataclass(frozen=True)
class WatchPolicy:
    """One engine's effective watch settings: its overrides over the defaults."""

    enabled: bool
    interval_s: float
    failures: int
    window_s: float
    timeout_s: float

    @classmethod
    def of(cls, defaults: HealthWatchSettings, row: HealthWatchRow | None) -> WatchPolicy:
        def pick(name: str) -> Any:
            value = getattr(row, name) if row is not None else None
            return getattr(defaults, name) if value is None else value

        interval = float(pick("interval_s"))
        return cls(
            enabled=bool(pick("enabled")),
            interval_s=interval,
            failures=int(pick("failures")),
            window_s=float(pick("window_s")),
            timeout_s=min(defaults.timeout_s, interval),
        )


@dataclass(frozen=True)
class CheckResult:
    """One check and what it led to."""

    engine: str
    watched_rollout_id: int
    ok: bool
    detail: str
    consecutive_failures: int
    rollback_rollout_id: int | None = None


@dataclass(frozen=True)
class _Due:
    engine_id: int
    engine: str
    target: EngineTarget
    commit: store.Commit
    policy: WatchPolicy


class HealthWatch:
    def __init__(
        self,
        *,
        sessions: SessionFactory,
        settings: HealthWatchSettings,
        adapter_factory: AdapterFactory,
        submit: Callable[[int], object],
        events: EventBus,
        registry: CollectorRegistry | None = None,
        max_parallel: int = 8,
    ) -> None:
        """``submit(rollout_id)`` hands a health rollback to the guard (``GuardService``)."""
        self._sessions = sessions
        self._settings = settings
        self._adapter_factory = adapter_factory
        self._submit = submit
        self._events = events
        self._pool = ThreadPoolExecutor(max_parallel, thread_name_prefix="health-watch")
        self._lock = threading.Lock()
        self._inflight: set[int] = set()
        self.checks = Counter(
            "cplane_health_checks",
            "Inference checks of the health watch, by engine and outcome (ok, failed).",
            ["engine", "outcome"],
            registry=registry,
        )
        self.rollbacks = Counter(
            "cplane_health_rollbacks",
            "Rollbacks the health watch started after repeated failed inference checks.",
            ["engine"],
            registry=registry,
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def tick(
        self, *, fence: Fence | None, now: datetime | None = None, wait: bool = True
    ) -> list[CheckResult]:
        """Check every engine that is due, count, and roll back where the count is reached.

        Checks run in the watch's own threads, one engine each, so a hung engine delays
        nobody else; an engine whose check is still running is not checked again. With
        ``wait`` the results are returned; without (the scheduler's tick) the call returns
        once the checks are started, and each is recorded when it ends.

        Raises:
            FencedOutError: the leader lost its lease; nothing more is written.
        """
        at = now or utcnow()
        with self._lock:
            due = [d for d in self._due(at) if d.engine_id not in self._inflight]
            self._inflight.update(d.engine_id for d in due)
        futures = [self._pool.submit(self._check_and_record, d, at, fence) for d in due]
        return [f.result() for f in futures] if wait else []

    def _check_and_record(self, due: _Due, at: datetime, fence: Fence | None) -> CheckResult:
        try:
            return self._record(due, self._check(due), at, fence)
        except FencedOutError:
            log.info("health watch: check of %s not recorded: leader lease lost", due.engine)
            raise
        except Exception:
            log.exception("health watch: recording the check of %s failed", due.engine)
            raise
        finally:
            with self._lock:
                self._inflight.discard(due.engine_id)

    # -- which engines -------------------------------------------------------------------

    def _due(self, now: datetime) -> list[_Due]:
        if not self._settings.enabled:
            return []
        out = []
        with self._sessions() as session, session.begin():
            for commit in store.latest_commits(session):
                if commit.reason == HEALTH_REASON or commit.finished_at is None:
                    continue
                row = store.get_watch(session, commit.engine_id)
                policy = WatchPolicy.of(self._settings, row)
                if not policy.enabled:
                    continue
                if now - commit.finished_at > timedelta(seconds=policy.window_s):
                    continue
                same = row is not None and row.watched_rollout_id == commit.rollout_id
                if same and row is not None and row.rollback_rollout_id is not None:
                    continue  # rolled back already: this change's watch is over
                if same and row is not None and row.last_check_at is not None:
                    # Half a tick early counts as due, so checks keep to the interval.
                    slack = timedelta(seconds=self._settings.tick_s / 2)
                    if now - row.last_check_at + slack < timedelta(seconds=policy.interval_s):
                        continue
                if rollouts.active_rollout(session, commit.engine_id) is not None:
                    continue  # the guard is watching it
                engine = engines.get_engine(session, commit.engine_id)
                out.append(
                    _Due(engine.id, engine.name, engines.engine_target(engine), commit, policy)
                )
        return out

    def _check(self, due: _Due) -> Health:
        adapter = self._adapter_factory(due.target)
        try:
            return adapter.check_inference(due.policy.timeout_s)
        except Exception as exc:  # noqa: BLE001 - an adapter bug counts as a failed check
            return Health(ok=False, detail=f"error: {type(exc).__name__}: {exc}")
        finally:
            adapter.close()

    # -- counting and rolling back -------------------------------------------------------

    def _record(self, due: _Due, health: Health, at: datetime, fence: Fence | None) -> CheckResult:
        self.checks.labels(due.engine, "ok" if health.ok else "failed").inc()
        rollback_id: int | None = None
        with self._sessions() as session, session.begin():
            row = store.record_check(
                session,
                due.engine_id,
                rollout_id=due.commit.rollout_id,
                ok=health.ok,
                detail=health.detail,
                at=at,
                fence=fence,
            )
            count = row.consecutive_failures
            if not health.ok and count == 1:
                log.warning(
                    "health watch: engine %s failed its inference check after rollout %d: %s",
                    due.engine,
                    due.commit.rollout_id,
                    health.detail,
                )
            if not health.ok and count >= due.policy.failures:
                rollback_id = self._start_rollback(session, due, row, health)
        result = CheckResult(
            due.engine, due.commit.rollout_id, health.ok, health.detail, count, rollback_id
        )
        if rollback_id is not None:
            self._after_rollback(due, result)
        return result

    def _start_rollback(
        self, session: Any, due: _Due, row: HealthWatchRow, health: Health
    ) -> int | None:
        commit = due.commit
        if commit.from_config_id is None or commit.to_config_id is None:
            log.warning(
                "health watch: rollout %d has no previous config to return to",
                commit.rollout_id,
            )
            return None
        if rollouts.active_rollout(session, due.engine_id) is not None:
            return None
        previous = dict(configs.get_config(session, commit.from_config_id).config)
        failing = dict(configs.get_config(session, commit.to_config_id).config)
        changes = {k: v for k, v in previous.items() if failing.get(k) != v} or previous
        rollout = rollouts.start_rollout(
            session,
            engine_id=due.engine_id,
            from_config_id=commit.to_config_id,
            to_config_id=commit.from_config_id,
            reason=HEALTH_REASON,
            actor=store.ACTOR,
            evidence={
                "changes": changes,
                "from_config": failing,
                "to_config": previous,
                "health": {
                    "watched_rollout_id": commit.rollout_id,
                    "consecutive_failures": row.consecutive_failures,
                    "last_error": health.detail,
                    "interval_s": due.policy.interval_s,
                    "failures": due.policy.failures,
                },
            },
        )
        store.record_rollback(session, row, rollout.id)
        return int(rollout.id)

    def _after_rollback(self, due: _Due, result: CheckResult) -> None:
        assert result.rollback_rollout_id is not None
        self.rollbacks.labels(due.engine).inc()
        self._submit(result.rollback_rollout_id)
        summary = (
            f"{result.consecutive_failures} inference checks in a row failed after rollout "
            f"{due.commit.rollout_id} (last: {result.detail}); rolling back to the config "
            "it replaced"
        )
        self._events.emit(
            GuardEvent(
                EVENT_KIND,
                due.engine,
                result.rollback_rollout_id,
                summary,
                {
                    "watched_rollout_id": due.commit.rollout_id,
                    "consecutive_failures": result.consecutive_failures,
                    "last_error": result.detail,
                },
            )
        )


class HealthWatchSource:
    """The watch as one leader job, ticking every ``tick_s`` (a fixed grid, like every
    interval job). Ticks are counted on ``/metrics`` but leave no job run: what the watch
    does is in its state row, and a rollback is a rollout (audited, with its evidence)."""

    name = "health_watch"
    scope = JobScope.leader

    def __init__(self, service: SchedulerService, *, registry: CollectorRegistry | None) -> None:
        self._service = service
        self._settings = service.settings.health_watch
        self._watch: HealthWatch | None = None
        self._registry = registry

    def watch(self) -> HealthWatch:
        if self._watch is None:
            guard = self._service.guard
            if guard is None:
                raise ConflictError("the health watch needs the guard in this process")
            self._watch = HealthWatch(
                sessions=self._service.sessions,
                settings=self._settings,
                adapter_factory=self._service.adapter_factory,
                submit=guard.submit,
                events=guard.events,
                registry=self._registry,
            )
        return self._watch

    def version(self, session: Session) -> Hashable:
        return (self._settings.enabled, self._settings.tick_s)

    def close(self) -> None:
        if self._watch is not None:
            self._watch.close()

    def load(self, session: Session) -> list[ScheduledJob]:
        if not self._settings.enabled:
            return []
        tick = self._settings.tick_s
        return [
            ScheduledJob(
                id="health_watch", trigger=interval_trigger(tick), run=self._run, signature=tick
            )
        ]

    def _run(self, firing: Firing) -> Outcome:
        # Without waiting: a check of a hung engine lasts up to its timeout, many ticks.
        self.watch().tick(fence=firing.fence, now=firing.now(), wait=False)
        return Outcome("idle")


def describe(
    session: Session, engine_id: int, engine_name: str, defaults: HealthWatchSettings
) -> HealthWatchRead:
    """An engine's watch as the API and CLI show it."""
    row = store.get_watch(session, engine_id)
    policy = WatchPolicy.of(defaults, row)
    overrides = {
        k: getattr(row, k)
        for k in store.OVERRIDES
        if row is not None and getattr(row, k) is not None
    }
    return HealthWatchRead(
        engine_id=engine_id,
        engine=engine_name,
        enabled=policy.enabled,
        interval_s=policy.interval_s,
        failures=policy.failures,
        window_s=policy.window_s,
        timeout_s=policy.timeout_s,
        overrides=overrides,
        watched_rollout_id=row.watched_rollout_id if row else None,
        consecutive_failures=row.consecutive_failures if row else 0,
        last_check_at=row.last_check_at if row else None,
        last_ok_at=row.last_ok_at if row else None,
        last_error=row.last_error if row else None,
        rollback_rollout_id=row.rollback_rollout_id if row else None,
    )


def update(
    session: Session,
    engine_id: int,
    engine_name: str,
    changes: HealthWatchUpdate,
    *,
    defaults: HealthWatchSettings,
    actor: str,
) -> HealthWatchRead:
    """Set or clear an engine's overrides (audited); the watch reads them at its next tick."""
    store.set_overrides(session, engine_id, changes.changes(), actor=actor)
    return describe(session, engine_id, engine_name, defaults)
