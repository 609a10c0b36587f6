"""The guard end to end against a real engine: harmless changes commit, slow ones roll back,
a paused engine is restored when it comes back, refused and inconclusive changes never
leave the engine off its last known good config, and every decision keeps its evidence."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import httpx
import pytest

from controlplane.domain import ConflictError
from controlplane.domain import EngineRejectedError
from controlplane.domain import EngineTarget
from controlplane.domain import RolloutState
from controlplane.domain import ValidationError
from controlplane.domain import parse_slo
from controlplane.engines import adapter_for
from controlplane.guard import EventBus
from controlplane.guard import GuardEvent
from controlplane.guard import RolloutRunner
from controlplane.guard import propose
from controlplane.store import configs
from controlplane.store import engines
from controlplane.store import rollouts
from controlplane.store import slos
from controlplane.store.database import SessionFactory
from controlplane.store.database import unit_of_work
from tests.controlplane.guard.conftest import FAST
from tests.controlplane.guard.conftest import Load
from tests.controlplane.guard.conftest import measure
from tests.controlplane.guard.conftest import register
from tests.fixtures.db import SQLITE_ONLY
from tests.fixtures.engines import RunningEngine

pytestmark = SQLITE_ONLY


def _config(engine: RunningEngine) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {engine.admin_token}"}
    body: dict[str, Any] = httpx.get(f"{engine.url}/admin/config", headers=headers).json()
    return body


def _propose(sessions: SessionFactory, engine_id: int, changes: dict[str, Any], **kw: Any) -> int:
    with unit_of_work(sessions) as s:
        row = engines.get_engine(s, engine_id)
        adapter = adapter_for(engines.engine_target(row))
        try:
            plan = propose(
                s,
                engine=row,
                adapter=adapter,
                changes=changes,
                reason=kw.pop("reason", "manual"),
                actor="user:t",
                bake_s=kw.pop("bake_s", FAST.bake_s),
                **kw,
            )
        finally:
            adapter.close()
    assert plan.rollout_id is not None
    return plan.rollout_id


def _runner(sessions: SessionFactory, events: list[GuardEvent], **kw: Any) -> RolloutRunner:
    bus = EventBus()
    bus.subscribe(events.append)
    return RolloutRunner(session_factory=sessions, policy=FAST, events=bus, **kw)


def _rollout(sessions: SessionFactory, rollout_id: int) -> Any:
    with sessions() as s:
        return rollouts.get_rollout(s, rollout_id)


def test_harmless_change_commits_and_becomes_last_known_good(
    sessions: SessionFactory, live_engine: RunningEngine
) -> None:
    engine_id = register(sessions, live_engine, "p99_s<=10", "error_rate<=1%")
    rollout_id = _propose(sessions, engine_id, {"max_queue_delay_ms": 1.0})
    load = Load(live_engine.url, concurrency=4, duration_s=8)
    events: list[GuardEvent] = []
    state = _runner(sessions, events).execute(rollout_id)
    result = load.join()

    assert state is RolloutState.committed
    assert _config(live_engine)["max_queue_delay_ms"] == 1.0
    with sessions() as s:
        lkg = configs.last_known_good(s, engine_id)
        assert lkg is not None and lkg.config["max_queue_delay_ms"] == 1.0
    row = _rollout(sessions, rollout_id)
    assert row.evidence["verdict"]["outcome"] == "pass"
    assert row.evidence["baseline"]["slos"]["p99"]["n"] > 0
    assert any(d["verdict"] == "hold" for d in row.evidence["decisions"])
    assert [e.kind for e in events] == ["rollout.committed"]
    assert result.failed == 0


def test_a_config_too_slow_for_the_load_is_rolled_back(
    sessions: SessionFactory, live_engine: RunningEngine
) -> None:
    # 32 tokens a request: decode steps dominate, and batch 8 serves several times what
    # batch 1 can, leaving headroom for the last known good on a busy machine.
    warm = measure(live_engine.url, concurrency=8, duration_s=2.0, max_tokens=32)
    assert warm.p99 is not None
    threshold_ms = max(1, round(warm.p99 * 2 * 1000))
    engine_id = register(sessions, live_engine, f"p99_ms<={threshold_ms}")
    rollout_id = _propose(sessions, engine_id, {"max_batch_size": 1}, bake_s=20.0)
    # Arrivals at half batch 8's capacity: more than batch 1 can serve, so its queue grows.
    load = Load(live_engine.url, rate=0.5 * warm.achieved_rps, duration_s=12, max_tokens=32)
    events: list[GuardEvent] = []
    state = _runner(sessions, events).execute(rollout_id)
    result = load.join()

    assert state is RolloutState.rolled_back
    assert _config(live_engine)["max_batch_size"] == 8  # back on LKG
    row = _rollout(sessions, rollout_id)
    verdict = row.evidence["verdict"]
    assert verdict["outcome"] == "breach" and verdict["at_s"] < 20.0
    assert row.evidence["rollback"]["restored"] is True
    breach = [d for d in row.evidence["decisions"] if d["verdict"] == "breach"]
    assert breach and breach[-1]["log_ratio"] >= breach[-1]["threshold"]
    # A breach is a suspicion confirmed by requests that finished after it.
    suspected = [d for d in row.evidence["decisions"] if d["verdict"] == "suspect"]
    assert suspected and suspected[0]["t_s"] < breach[-1]["t_s"]
    confirm = breach[-1]["confirm"]
    assert confirm["n"] >= FAST.min_requests and confirm["log_ratio"] >= confirm["threshold"]
    assert [e.kind for e in events] == ["rollout.rolled_back"]
    # Nobody's request failed because of the change or the rollback.
    assert result.failed == 0, sorted(
        {f"{r.http_status} {r.error}" for r in result.records if r.status == "failed"}
    )


def test_engine_paused_mid_bake_is_restored_when_it_returns(
    sessions: SessionFactory, live_engine: RunningEngine
) -> None:
    engine_id = register(sessions, live_engine, "p99_s<=10")
    rollout_id = _propose(sessions, engine_id, {"max_batch_size": 4}, bake_s=30.0)
    load = Load(live_engine.url, concurrency=2, duration_s=10)

    def pause_once_baking() -> None:
        deadline = time.monotonic() + 20
        while _rollout(sessions, rollout_id).state != "baking" and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(live_engine.process.pid, signal.SIGSTOP)
        time.sleep(2.5)
        os.kill(live_engine.process.pid, signal.SIGCONT)

    pauser = threading.Thread(target=pause_once_baking)
    pauser.start()
    state = _runner(sessions, []).execute(rollout_id)
    pauser.join()
    load.join()
    assert state is RolloutState.rolled_back
    row = _rollout(sessions, rollout_id)
    assert row.evidence["verdict"]["outcome"] == "unreachable"
    assert row.evidence["rollback"]["restored"] is True
    assert _config(live_engine)["max_batch_size"] == 8


def test_no_traffic_is_inconclusive_then_rolled_back(
    sessions: SessionFactory, live_engine: RunningEngine
) -> None:
    engine_id = register(sessions, live_engine, "p99_s<=10")
    rollout_id = _propose(sessions, engine_id, {"max_batch_size": 4})
    state = _runner(sessions, []).execute(rollout_id)
    assert state is RolloutState.rolled_back
    verdict = _rollout(sessions, rollout_id).evidence["verdict"]
    assert verdict["outcome"] == "inconclusive"
    assert verdict["at_s"] >= FAST.bake_s + FAST.no_data_timeout_s
    assert _config(live_engine)["max_batch_size"] == 8


class _Refusing:
    """The real adapter, except that the engine 'refuses' the new config on apply."""

    def __init__(self, target: EngineTarget) -> None:
        self._real = adapter_for(target)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def apply(self, changes: Any) -> Any:
        if changes.get("max_batch_size") == 4:
            raise EngineRejectedError("engine says no", field="max_batch_size")
        return self._real.apply(changes)


def test_a_refused_change_fails_and_leaves_the_engine_untouched(
    sessions: SessionFactory, live_engine: RunningEngine
) -> None:
    engine_id = register(sessions, live_engine, "p99_s<=10")
    rollout_id = _propose(sessions, engine_id, {"max_batch_size": 4})
    events: list[GuardEvent] = []
    factory: Any = _Refusing
    state = _runner(sessions, events, adapter_factory=factory).execute(rollout_id)
    assert state is RolloutState.failed
    assert "engine says no" in (_rollout(sessions, rollout_id).error or "")
    assert _config(live_engine)["max_batch_size"] == 8
    assert [e.kind for e in events] == ["rollout.failed"]


def test_operator_rollback_from_another_process(
    sessions: SessionFactory, live_engine: RunningEngine
) -> None:
    engine_id = register(sessions, live_engine, "p99_s<=10")
    rollout_id = _propose(sessions, engine_id, {"max_batch_size": 4}, bake_s=60.0)

    def request_when_baking() -> None:
        while _rollout(sessions, rollout_id).state != "baking":
            time.sleep(0.05)
        with unit_of_work(sessions) as s:
            rollouts.request_rollback(s, rollouts.get_rollout(s, rollout_id), actor="user:op")

    requester = threading.Thread(target=request_when_baking)
    requester.start()
    started = time.monotonic()
    state = _runner(sessions, []).execute(rollout_id)
    requester.join()
    assert state is RolloutState.rolled_back
    assert time.monotonic() - started < 30
    assert _rollout(sessions, rollout_id).evidence["verdict"]["summary"].endswith("user:op")
    assert _config(live_engine)["max_batch_size"] == 8


def test_bad_proposals_change_nothing(
    sessions: SessionFactory, live_engine: RunningEngine
) -> None:
    engine_id = register(sessions, live_engine)
    with pytest.raises(ValidationError, match="no SLO"):
        _propose(sessions, engine_id, {"max_batch_size": 4})
    with unit_of_work(sessions) as s:
        slos.set_slo(s, engine_id=engine_id, slo=parse_slo("p99_s<=10"), actor="t")
    for changes, field in (
        ({"max_batch_size": 0}, "max_batch_size"),
        ({"streams": 1000}, "streams"),
        ({"precision": "fp4"}, "precision"),
        ({"warp_drive": 1}, "warp_drive"),
        ({"max_batch_size": 8}, "changes"),  # no change
    ):
        with pytest.raises(ValidationError) as info:
            _propose(sessions, engine_id, changes)
        assert info.value.field == field
    with sessions() as s:
        assert rollouts.list_rollouts(s) == []
        assert configs.config_history(s, engine_id) == []
    first = _propose(sessions, engine_id, {"max_batch_size": 4})
    with pytest.raises(ConflictError, match=f"rollout {first}"):
        _propose(sessions, engine_id, {"max_batch_size": 2})
    assert _config(live_engine)["max_batch_size"] == 8


def test_tuner_changes_wait_for_approval_on_manual_engines(
    sessions: SessionFactory, live_engine: RunningEngine
) -> None:
    engine_id = register(sessions, live_engine, "p99_s<=10", approval="manual")
    rollout_id = _propose(sessions, engine_id, {"max_batch_size": 4}, reason="tuner")
    runner = _runner(sessions, [])
    with pytest.raises(ConflictError, match="approval"):
        runner.execute(rollout_id)
    assert _config(live_engine)["max_batch_size"] == 8
    with unit_of_work(sessions) as s:
        rollouts.approve(s, rollouts.get_rollout(s, rollout_id), actor="user:op")
    load = Load(live_engine.url, concurrency=2, duration_s=7)
    assert runner.execute(rollout_id) is RolloutState.committed
    load.join()
    assert _config(live_engine)["max_batch_size"] == 4


def test_engine_gone_for_good_mid_bake_ends_failed_with_an_event(
    sessions: SessionFactory, live_engine: RunningEngine
) -> None:
    engine_id = register(sessions, live_engine, "p99_s<=10")
    rollout_id = _propose(sessions, engine_id, {"max_batch_size": 4}, bake_s=30.0)

    def kill_once_baking() -> None:
        while _rollout(sessions, rollout_id).state != "baking":
            time.sleep(0.05)
        live_engine.process.kill()

    killer = threading.Thread(target=kill_once_baking)
    killer.start()
    events: list[GuardEvent] = []
    policy = FAST.model_copy(update={"rollback_timeout_s": 2.0})
    bus = EventBus()
    bus.subscribe(events.append)
    runner = RolloutRunner(session_factory=sessions, policy=policy, events=bus)
    state = runner.execute(rollout_id)
    killer.join()
    assert state is RolloutState.failed
    row = _rollout(sessions, rollout_id)
    assert row.evidence["verdict"]["outcome"] == "unreachable"
    assert row.evidence["rollback"]["restored"] is False
    assert "restoring the last known good config failed" in (row.error or "")
    assert [e.kind for e in events] == ["rollout.failed"]
