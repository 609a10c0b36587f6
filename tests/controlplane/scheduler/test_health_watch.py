"""The health watch's logic on a real database with a fake clock and a scripted engine:
counting failures in a row, the reset on success, the window after a commit, the rollback it
starts (and only once), per-engine overrides, fencing, and the guard's restore of a health
rollback. The real engine made to fail is in test_health_watch_live.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from controlplane.domain import Fence
from controlplane.domain import FencedOutError
from controlplane.domain import RolloutState
from controlplane.domain import parse_slo
from controlplane.guard import EventBus
from controlplane.guard import GuardEvent
from controlplane.guard import RolloutRunner
from controlplane.guard import reconcile
from controlplane.scheduler.health_watch import HealthWatch
from controlplane.schemas.engines import EngineCreate
from controlplane.settings import GuardSettings
from controlplane.settings import HealthWatchSettings
from controlplane.store import configs
from controlplane.store import engines
from controlplane.store import health_watch
from controlplane.store import jobs
from controlplane.store import rollouts
from controlplane.store import slos
from controlplane.store.database import SessionFactory
from tests.controlplane.scheduler.conftest import FakeClock
from tests.fixtures.fake_adapter import FakeClock as MonotonicClock
from tests.fixtures.fake_adapter import FakeEngine

DEFAULTS = HealthWatchSettings(interval_s=15, failures=3, window_s=86_400, timeout_s=10)
GOOD = {"max_batch_size": 8, "streams": 1, "precision": "fp32", "max_queue_delay_ms": 0.0}
BAD = {**GOOD, "max_batch_size": 32}


class Watched:
    """An engine with a committed change (GOOD -> BAD) and a watch over it."""

    def __init__(self, sessions: SessionFactory, clock: FakeClock, engine: FakeEngine) -> None:
        self.sessions, self.clock, self.engine = sessions, clock, engine
        self.submitted: list[int] = []
        self.events: list[GuardEvent] = []
        bus = EventBus()
        bus.subscribe(self.events.append)
        self.registry = CollectorRegistry()
        self.watch = HealthWatch(
            sessions=sessions,
            settings=DEFAULTS,
            adapter_factory=engine.adapter,
            submit=self.submitted.append,
            events=bus,
            registry=self.registry,
        )
        with sessions() as s, s.begin():
            data = EngineCreate.model_validate({"name": "fake", "url": engine.url})
            row = engines.add_engine(s, data=data, actor="t")
            slos.set_slo(s, engine_id=row.id, slo=parse_slo("p99_s<=1"), actor="t")
            self.engine_id = row.id
        self.rollout_id = self.commit(GOOD, BAD)

    def commit(self, before: dict[str, Any], after: dict[str, Any], reason: str = "manual") -> int:
        """A rollout from ``before`` to ``after``, committed now (as the guard leaves one)."""
        with self.sessions() as s, s.begin():
            a = configs.record_config(
                s, engine_id=self.engine_id, config=before, source="t", actor="t"
            )
            b = configs.record_config(
                s, engine_id=self.engine_id, config=after, source="t", actor="t"
            )
            row = rollouts.start_rollout(
                s,
                engine_id=self.engine_id,
                from_config_id=a.id,
                to_config_id=b.id,
                reason=reason,
                actor="t",
                evidence={"changes": after, "from_config": before, "to_config": after},
            )
            for state in (RolloutState.applying, RolloutState.baking, RolloutState.committed):
                rollouts.move(s, row, state, actor="t")
            configs.mark_last_known_good(s, b)
            rollout_id = int(row.id)
        self.engine.config = dict(after)
        return rollout_id

    def tick(self, after_s: float = 0.0, fence: Fence | None = None) -> list[Any]:
        return self.watch.tick(fence=fence, now=self.clock.advance(after_s))

    def state(self) -> Any:
        with self.sessions() as s:
            return health_watch.get_watch(s, self.engine_id)


@pytest.fixture
def watched(sessions: SessionFactory, clock: FakeClock) -> Iterator[Watched]:
    with FakeEngine(name="fake") as engine:
        w = Watched(sessions, clock, engine)
        yield w
        w.watch.close()


def test_three_failures_in_a_row_roll_back_to_the_config_the_change_replaced(
    watched: Watched, sessions: SessionFactory
) -> None:
    assert [r.ok for r in watched.tick()] == [True]
    watched.engine.inference_failure = "timeout"
    assert [r.consecutive_failures for r in watched.tick(15)] == [1]
    assert watched.tick(5) == []  # not due: the interval is 15 s
    assert [r.consecutive_failures for r in watched.tick(10)] == [2]
    assert not watched.submitted
    (third,) = watched.tick(15)
    assert third.consecutive_failures == 3 and third.rollback_rollout_id is not None
    assert watched.submitted == [third.rollback_rollout_id]
    with sessions() as s:
        back = rollouts.get_rollout(s, third.rollback_rollout_id)
        watched_row = rollouts.get_rollout(s, watched.rollout_id)
        assert back.reason == "health" and back.state == "pending"
        assert (back.from_config_id, back.to_config_id) == (
            watched_row.to_config_id,
            watched_row.from_config_id,
        )
        assert back.evidence["changes"] == {"max_batch_size": 8}
        assert back.evidence["health"]["last_error"] == "timeout (fake)"
    (event,) = watched.events
    assert event.kind == "health.rollback" and event.rollout_id == third.rollback_rollout_id
    assert event.engine == "fake" and "3 inference checks in a row failed" in event.summary
    count = watched.registry.get_sample_value("cplane_health_rollbacks_total", {"engine": "fake"})
    assert count == 1.0
    # The watch of that change is over: no second rollback, however long it keeps failing.
    assert watched.tick(15) == [] and watched.tick(15) == []
    assert len(watched.submitted) == 1


def test_one_success_resets_the_count(watched: Watched) -> None:
    watched.engine.inference_failure = "error: HTTP 500"
    watched.tick()
    watched.tick(15)
    assert watched.state().consecutive_failures == 2
    watched.engine.inference_failure = None
    (ok,) = watched.tick(15)
    assert ok.ok and ok.consecutive_failures == 0
    assert watched.state().last_error is None and watched.state().last_ok_at is not None
    watched.engine.inference_failure = "wrong shape: no choices"
    watched.tick(15)
    watched.tick(15)
    assert watched.state().consecutive_failures == 2
    assert watched.state().last_error == "wrong shape: no choices (fake)"
    assert not watched.submitted


def test_the_watch_ends_with_its_window(watched: Watched) -> None:
    watched.engine.inference_failure = "timeout"
    watched.tick()
    watched.tick(15)
    assert watched.tick(86_400) == []  # a day after the commit: no longer watched
    assert watched.state().consecutive_failures == 2 and not watched.submitted


def test_a_newer_commit_starts_a_new_count_and_a_health_rollback_is_not_watched(
    watched: Watched,
) -> None:
    watched.engine.inference_failure = "timeout"
    watched.tick()
    watched.tick(15)
    newer = watched.commit(BAD, {**BAD, "streams": 2})
    (first,) = watched.tick(15)
    assert first.watched_rollout_id == newer and first.consecutive_failures == 1
    watched.commit({**BAD, "streams": 2}, BAD, reason="health")
    assert watched.tick(15) == []


def test_no_checks_while_a_rollout_is_in_flight(
    watched: Watched, sessions: SessionFactory
) -> None:
    with sessions() as s, s.begin():
        rollouts.start_rollout(
            s,
            engine_id=watched.engine_id,
            from_config_id=None,
            to_config_id=None,
            reason="manual",
            actor="t",
        )
    assert watched.tick() == [] and watched.engine.inference_checks == 0


def test_per_engine_overrides(watched: Watched, sessions: SessionFactory) -> None:
    with sessions() as s, s.begin():
        health_watch.set_overrides(
            s, watched.engine_id, {"interval_s": 1.0, "failures": 1}, actor="alice"
        )
    watched.tick()  # ok
    watched.engine.inference_failure = "timeout"
    (only,) = watched.tick(1)
    assert only.rollback_rollout_id is not None
    with sessions() as s, s.begin():
        health_watch.set_overrides(s, watched.engine_id, {"enabled": False}, actor="alice")
        back = rollouts.get_rollout(s, only.rollback_rollout_id)
        rollouts.move(s, back, RolloutState.failed, actor="t")
    watched.commit(GOOD, BAD)
    assert watched.tick(1) == []


def test_a_deposed_leader_counts_nothing(watched: Watched, sessions: SessionFactory) -> None:
    with sessions() as s, s.begin():
        token = jobs.acquire_or_renew(s, jobs.LEADER_LEASE, "new", 5.0, watched.clock())
    assert token is not None
    watched.engine.inference_failure = "timeout"
    with pytest.raises(FencedOutError):
        watched.tick(fence=Fence(jobs.LEADER_LEASE, "old", token))
    assert watched.state() is None
    (counted,) = watched.tick(fence=Fence(jobs.LEADER_LEASE, "new", token))
    assert counted.consecutive_failures == 1


FAST_RESTORE = GuardSettings(rollback_timeout_s=5.0, heartbeat_s=60.0, baseline_s=30.0)


def test_the_guard_restores_a_health_rollback_without_a_baseline(
    watched: Watched, sessions: SessionFactory
) -> None:
    watched.engine.inference_failure = "timeout"
    for after in (0, 15, 15):
        (last,) = watched.tick(after)
    clock = MonotonicClock()

    def wait(event: threading.Event, seconds: float) -> bool:
        watched.engine.unreachable = False  # back after the first pause between retries
        return clock.wait(event, seconds)

    runner = RolloutRunner(
        session_factory=sessions,
        policy=FAST_RESTORE,
        adapter_factory=watched.engine.adapter,
        clock=clock,
        wait=wait,
    )
    started = clock()
    watched.engine.unreachable = True  # still failing when the guard starts: it retries
    state = runner.execute(last.rollback_rollout_id)
    assert state == RolloutState.committed
    assert watched.engine.config["max_batch_size"] == 8
    assert clock() - started < FAST_RESTORE.baseline_s  # no baseline wait
    with sessions() as s:
        row = rollouts.get_rollout(s, last.rollback_rollout_id)
        lkg = configs.last_known_good(s, watched.engine_id)
        assert lkg is not None and lkg.id == row.to_config_id
        assert row.evidence["restore"]["restored"] is True
        assert row.evidence["baseline"] == {"skipped": "health"}


def test_a_health_rollback_that_cannot_restore_fails_and_says_so(
    watched: Watched, sessions: SessionFactory
) -> None:
    watched.engine.inference_failure = "timeout"
    for after in (0, 15, 15):
        (last,) = watched.tick(after)
    watched.engine.unreachable = True
    clock = MonotonicClock()
    events: list[GuardEvent] = []
    bus = EventBus()
    bus.subscribe(events.append)
    runner = RolloutRunner(
        session_factory=sessions,
        policy=FAST_RESTORE,
        events=bus,
        adapter_factory=watched.engine.adapter,
        clock=clock,
        wait=clock.wait,
    )
    assert runner.execute(last.rollback_rollout_id) == RolloutState.failed
    with sessions() as s:
        row = rollouts.get_rollout(s, last.rollback_rollout_id)
        assert row.error is not None and "restoring the previous config failed" in row.error
    assert [e.kind for e in events] == ["rollout.failed"]
    assert watched.engine.config["max_batch_size"] == 32


def test_a_health_rollback_abandoned_mid_restore_is_reconciled_to_the_good_config(
    watched: Watched, sessions: SessionFactory
) -> None:
    watched.engine.inference_failure = "timeout"
    for after in (0, 15, 15):
        (last,) = watched.tick(after)
    with sessions() as s, s.begin():
        back = rollouts.get_rollout(s, last.rollback_rollout_id)
        rollouts.move(s, back, RolloutState.applying, actor="guard")  # then the process died
    settled = reconcile(
        sessions,
        policy=GuardSettings(stale_after_s=1.0, rollback_timeout_s=2.0),
        adapter_factory=watched.engine.adapter,
        events=EventBus(),
        now=lambda: watched.clock.advance(60),
    )
    assert settled == [last.rollback_rollout_id]
    assert watched.engine.config["max_batch_size"] == 8  # not the failing 32 (still LKG)
