"""The runner's lifecycle logic on the fake engine and a fake clock, on both stores: every
ending (commit, rollback on breach, refused or failed apply, an operator's rollback asked
for through the stored flag, an engine that pauses or dies) with its evidence, events and
audit trail, and reconcile of a rollout its runner abandoned. A whole bake takes as long
as its scrapes of a local socket. The same paths against a real engine under real load
are in test_runner.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from controlplane.domain import EngineRejectedError
from controlplane.domain import EngineUnreachableError
from controlplane.domain import RolloutState
from controlplane.domain import parse_slo
from controlplane.guard import EventBus
from controlplane.guard import GuardEvent
from controlplane.guard import RolloutRunner
from controlplane.guard import propose
from controlplane.guard.reconcile import reconcile
from controlplane.schemas.engines import EngineCreate
from controlplane.settings import GuardSettings
from controlplane.store import audit
from controlplane.store import configs
from controlplane.store import engines
from controlplane.store import rollouts
from controlplane.store import slos
from controlplane.store.base import utcnow
from controlplane.store.database import SessionFactory
from controlplane.store.database import unit_of_work
from tests.fixtures.fake_adapter import Behaviour
from tests.fixtures.fake_adapter import FakeClock
from tests.fixtures.fake_adapter import FakeEngine

POLICY = GuardSettings(
    interval_s=1.0,
    baseline_s=10.0,
    warmup_s=1.0,
    bake_s=30.0,
    min_requests=20,
    restart_s=2.0,
    confirm_s=2.0,
    no_data_timeout_s=5.0,
    unreachable_s=3.0,
    rollback_timeout_s=10.0,
    heartbeat_s=60.0,  # the stamp at start is enough on a fake clock; one test shortens it
    stale_after_s=120.0,
)
SLOW = Behaviour(latency_s=3.0)  # every request over the p99 <= 1 s SLO


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeEngine]:
    """Batch 1 is too slow for the SLO; every other config is fast."""
    with FakeEngine(
        clock=clock, behaviour=lambda c: SLOW if c["max_batch_size"] == 1 else Behaviour()
    ) as engine:
        yield engine


def _setup(sessions: SessionFactory, fake: FakeEngine, changes: dict[str, Any]) -> int:
    """Registers the fake engine with the SLO ``p99_s<=1`` and proposes ``changes``."""
    with unit_of_work(sessions) as s:
        data = EngineCreate.model_validate({"name": fake.name, "url": fake.url})
        row = engines.add_engine(s, data=data, actor="t")
        slos.set_slo(s, engine_id=row.id, slo=parse_slo("p99_s<=1"), actor="t")
        adapter = fake.adapter(engines.engine_target(row))
        try:
            plan = propose(
                s,
                engine=row,
                adapter=adapter,
                changes=changes,
                reason="manual",
                actor="user:t",
                bake_s=POLICY.bake_s,
            )
        finally:
            adapter.close()
    assert plan.rollout_id is not None
    return plan.rollout_id


def _run(
    sessions: SessionFactory,
    fake: FakeEngine,
    clock: FakeClock,
    rollout_id: int,
    *,
    policy: GuardSettings = POLICY,
    stop: threading.Event | None = None,
) -> tuple[RolloutState, list[str]]:
    events: list[GuardEvent] = []
    bus = EventBus()
    bus.subscribe(events.append)
    runner = RolloutRunner(
        session_factory=sessions,
        policy=policy,
        events=bus,
        adapter_factory=fake.adapter,
        clock=clock,
        wait=clock.wait,
    )
    state = runner.execute(rollout_id, stop=stop)
    assert fake.adapters_open == 0  # the runner closed what it opened
    return state, [e.kind for e in events]


def _rollout(sessions: SessionFactory, rollout_id: int) -> Any:
    with sessions() as s:
        return rollouts.get_rollout(s, rollout_id)


def _moves(sessions: SessionFactory, rollout_id: int) -> list[tuple[str, str]]:
    with sessions() as s:
        events = audit.list_events(s, target_type="rollout", target_id=str(rollout_id))
        return [(e.actor, e.action) for e in reversed(events)]


def test_a_change_within_its_slo_commits_after_the_bake(
    sessions: SessionFactory, fake: FakeEngine, clock: FakeClock
) -> None:
    rollout_id = _setup(sessions, fake, {"max_batch_size": 4})
    started = clock()
    state, events = _run(sessions, fake, clock, rollout_id)

    assert state is RolloutState.committed and events == ["rollout.committed"]
    assert fake.config["max_batch_size"] == 4 and len(fake.applied) == 1
    row = _rollout(sessions, rollout_id)
    assert row.evidence["verdict"]["outcome"] == "pass"
    assert row.evidence["verdict"]["at_s"] >= POLICY.bake_s
    assert row.evidence["baseline"]["slos"]["p99"]["n"] == 10 * 50  # 10 s at 50 req/s
    assert clock() - started >= POLICY.baseline_s + POLICY.bake_s
    with sessions() as s:
        lkg = configs.last_known_good(s, row.engine_id)
        assert lkg is not None and lkg.config["max_batch_size"] == 4
    assert _moves(sessions, rollout_id) == [
        ("user:t", "rollout.start"),
        ("guard", "rollout.applying"),
        ("guard", "rollout.baking"),
        ("guard", "rollout.committed"),
    ]


def test_a_change_that_breaches_its_slo_is_rolled_back_to_last_known_good(
    sessions: SessionFactory, fake: FakeEngine, clock: FakeClock
) -> None:
    rollout_id = _setup(sessions, fake, {"max_batch_size": 1})
    state, events = _run(sessions, fake, clock, rollout_id)

    assert state is RolloutState.rolled_back and events == ["rollout.rolled_back"]
    assert [c["max_batch_size"] for c in fake.applied] == [1, 8]  # the change, then LKG
    row = _rollout(sessions, rollout_id)
    verdict = row.evidence["verdict"]
    assert verdict["outcome"] == "breach" and verdict["at_s"] < POLICY.bake_s
    assert row.evidence["rollback"]["restored"] is True
    verdicts = [d["verdict"] for d in row.evidence["decisions"]]
    assert "suspect" in verdicts and verdicts[-1] == "breach"  # confirmed, not one look
    with sessions() as s:
        lkg = configs.last_known_good(s, row.engine_id)
        assert lkg is not None and lkg.config["max_batch_size"] == 8


def test_a_refused_apply_fails_and_leaves_the_engine_untouched(
    sessions: SessionFactory, fake: FakeEngine, clock: FakeClock
) -> None:
    rollout_id = _setup(sessions, fake, {"max_batch_size": 4})
    fake.fail_next_apply(EngineRejectedError("engine says no", field="max_batch_size"))
    state, events = _run(sessions, fake, clock, rollout_id)

    assert state is RolloutState.failed and events == ["rollout.failed"]
    assert fake.applied == [] and fake.config["max_batch_size"] == 8
    row = _rollout(sessions, rollout_id)
    assert "engine says no" in (row.error or "")
    assert row.evidence["verdict"]["outcome"] == "refused"
    assert "rollback" not in row.evidence  # nothing to restore


def test_an_apply_that_got_no_answer_fails_after_putting_last_known_good_back(
    sessions: SessionFactory, fake: FakeEngine, clock: FakeClock
) -> None:
    rollout_id = _setup(sessions, fake, {"max_batch_size": 4})
    fake.fail_next_apply(EngineUnreachableError("read timed out"))
    state, events = _run(sessions, fake, clock, rollout_id)

    assert state is RolloutState.failed and events == ["rollout.failed"]
    row = _rollout(sessions, rollout_id)
    assert row.evidence["verdict"]["outcome"] == "unreachable"
    assert row.evidence["rollback"]["restored"] is True  # its state was unknown: LKG again
    assert [c["max_batch_size"] for c in fake.applied] == [8]


def test_an_operator_rollback_asked_for_elsewhere_reaches_the_runner_through_the_store(
    sessions: SessionFactory, fake: FakeEngine, clock: FakeClock
) -> None:
    rollout_id = _setup(sessions, fake, {"max_batch_size": 4})
    stop = threading.Event()
    heard: list[bool] = []

    def operator_asks(served: dict[str, Any]) -> None:
        if served["max_batch_size"] != 4:
            return  # the restore of the last known good
        # Another process (its own session) sets the flag; nothing else tells this runner.
        with unit_of_work(sessions) as s:
            rollouts.request_rollback(s, rollouts.get_rollout(s, rollout_id), actor="user:op")
        heard.append(stop.wait(30))  # the runner's lease reads the flag and stops it

    fake.on_apply = operator_asks
    policy = POLICY.model_copy(update={"heartbeat_s": 0.02})
    state, events = _run(sessions, fake, clock, rollout_id, policy=policy, stop=stop)

    assert heard == [True]
    assert state is RolloutState.rolled_back and events == ["rollout.rolled_back"]
    verdict = _rollout(sessions, rollout_id).evidence["verdict"]
    assert verdict["outcome"] == "operator" and verdict["summary"].endswith("user:op")
    assert [c["max_batch_size"] for c in fake.applied] == [4, 8]


def test_an_engine_paused_mid_bake_is_restored_when_it_answers_again(
    sessions: SessionFactory, fake: FakeEngine, clock: FakeClock
) -> None:
    rollout_id = _setup(sessions, fake, {"max_batch_size": 4})
    fake.on_apply = lambda served: fake.pause(6.0) if served["max_batch_size"] == 4 else None
    state, events = _run(sessions, fake, clock, rollout_id)

    assert state is RolloutState.rolled_back and events == ["rollout.rolled_back"]
    row = _rollout(sessions, rollout_id)
    assert row.evidence["verdict"]["outcome"] == "unreachable"
    restore = row.evidence["rollback"]
    assert restore["restored"] is True and restore["attempts"] > 1  # retried until it was back
    assert fake.config["max_batch_size"] == 8


def test_an_engine_gone_for_good_ends_failed_saying_the_restore_failed(
    sessions: SessionFactory, fake: FakeEngine, clock: FakeClock
) -> None:
    rollout_id = _setup(sessions, fake, {"max_batch_size": 4})
    fake.on_apply = lambda served: setattr(fake, "unreachable", True)
    state, events = _run(sessions, fake, clock, rollout_id)

    assert state is RolloutState.failed and events == ["rollout.failed"]
    row = _rollout(sessions, rollout_id)
    assert row.evidence["rollback"]["restored"] is False
    assert row.evidence["rollback"]["duration_s"] >= POLICY.rollback_timeout_s
    assert "restoring the last known good config failed" in (row.error or "")


def test_no_traffic_is_inconclusive_and_rolled_back_after_the_extra_hold(
    sessions: SessionFactory, fake: FakeEngine, clock: FakeClock
) -> None:
    rollout_id = _setup(sessions, fake, {"max_batch_size": 4})
    fake.rate_rps = 0.0
    state, _ = _run(sessions, fake, clock, rollout_id)

    assert state is RolloutState.rolled_back
    verdict = _rollout(sessions, rollout_id).evidence["verdict"]
    assert verdict["outcome"] == "inconclusive"
    assert verdict["at_s"] >= POLICY.bake_s + POLICY.no_data_timeout_s


def test_reconcile_puts_an_abandoned_rollout_back_and_leaves_a_watched_one_alone(
    sessions: SessionFactory, fake: FakeEngine
) -> None:
    rollout_id = _setup(sessions, fake, {"max_batch_size": 4})
    with unit_of_work(sessions) as s:  # a runner that applied, started baking, then died
        row = rollouts.get_rollout(s, rollout_id)
        rollouts.move(s, row, RolloutState.applying, actor="guard")
        adapter = fake.adapter(fake.target())
        adapter.apply({"max_batch_size": 4})
        adapter.close()
        rollouts.move(s, row, RolloutState.baking, actor="guard")
    events: list[GuardEvent] = []
    bus = EventBus()
    bus.subscribe(events.append)

    def settle(after_s: float) -> list[int]:
        return reconcile(
            sessions,
            policy=POLICY,
            adapter_factory=fake.adapter,
            events=bus,
            now=lambda: utcnow() + timedelta(seconds=after_s),
        )

    assert settle(0.0) == []  # its heartbeat is fresh: someone may still be watching
    assert fake.config["max_batch_size"] == 4
    assert settle(POLICY.stale_after_s + 1) == [rollout_id]
    row = _rollout(sessions, rollout_id)
    assert row.state == "rolled_back" and row.evidence["reconciled"]["found_in"] == "baking"
    assert fake.config["max_batch_size"] == 8 and fake.adapters_open == 0
    assert [e.kind for e in events] == ["rollout.reconciled"]
    assert _moves(sessions, rollout_id)[-1] == ("reconcile", "rollout.rolled_back")
    assert settle(POLICY.stale_after_s + 1) == []  # settled once
