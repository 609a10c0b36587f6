"""The health watch on a real reference engine, run by the real scheduler: a change commits
through the guard, the engine then hangs (SIGSTOP), three inference checks in a row time
out, and the watch rolls it back through the guard to the config it served before the
change. The engine resumes (SIGCONT) once the rollback has started: the guard's restore
waits for it, and the engine ends up serving its previous config, now last known good."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from controlplane.domain import EngineTarget
from controlplane.domain import RolloutState
from controlplane.domain import parse_slo
from controlplane.engines import adapter_for
from controlplane.guard import GuardEvent
from controlplane.guard import GuardService
from controlplane.guard import propose
from controlplane.scheduler import SchedulerService
from controlplane.scheduler.health_watch import HealthWatchSource
from controlplane.schemas.engines import EngineCreate
from controlplane.settings import GuardSettings
from controlplane.settings import HealthWatchSettings
from controlplane.settings import SchedulerSettings
from controlplane.settings import Settings
from controlplane.store import configs
from controlplane.store import engines
from controlplane.store import rollouts
from controlplane.store import slos
from controlplane.store.database import SessionFactory
from tests.fixtures.engines import RunningEngine
from tests.fixtures.engines import start_engine

pytestmark = pytest.mark.slow

GUARD = GuardSettings(
    interval_s=0.2,
    baseline_s=0.2,
    warmup_s=0.2,
    bake_s=0.6,
    no_data_timeout_s=0.3,
    on_no_data="commit",
    rollback_timeout_s=30.0,
    heartbeat_s=0.5,
)
WATCH = HealthWatchSettings(interval_s=0.5, failures=3, window_s=600, timeout_s=0.5, tick_s=0.1)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[RunningEngine]:
    e = start_engine(tmp_path, "--batch-size", "8")
    yield e
    if e.process.poll() is None:
        os.kill(e.process.pid, signal.SIGCONT)
    e.stop()


def _served_batch(engine: RunningEngine) -> int:
    headers = {"Authorization": f"Bearer {engine.admin_token}"}
    body = httpx.get(f"{engine.url}/admin/config", headers=headers, timeout=10).json()
    return int(body["max_batch_size"])


def test_a_hung_engine_is_rolled_back_to_its_previous_config(
    db_engine: Engine, sessions: SessionFactory, tmp_path: Path, engine: RunningEngine
) -> None:
    settings = Settings(
        database_url=db_engine.url.render_as_string(hide_password=False),
        data_dir=tmp_path,
        guard=GUARD,
        health_watch=WATCH,
        scheduler=SchedulerSettings(lease_s=30.0, refresh_s=3600.0),
    )
    target = EngineTarget("ref", "reference", engine.url, admin_token=engine.admin_token)
    with sessions() as s, s.begin():
        data = EngineCreate.model_validate(
            {"name": "ref", "url": engine.url, "admin_token": engine.admin_token}
        )
        row = engines.add_engine(s, data=data, actor="t")
        slos.set_slo(s, engine_id=row.id, slo=parse_slo("p99_s<=5"), actor="t")
        adapter = adapter_for(target)
        try:
            plan = propose(
                s, engine=row, adapter=adapter, changes={"max_batch_size": 4},
                reason="manual", actor="t", bake_s=GUARD.bake_s,
            )  # fmt: skip
        finally:
            adapter.close()
        engine_id = row.id
    assert plan.rollout_id is not None
    guard = GuardService(sessions=sessions, policy=GUARD)
    events: list[GuardEvent] = []
    rolled_back = threading.Event()

    def listen(event: GuardEvent) -> None:
        events.append(event)
        if event.kind == "health.rollback":
            rolled_back.set()

    guard.events.subscribe(listen)
    guard.start()
    registry = CollectorRegistry()
    service = SchedulerService(sessions, settings, guard=guard, holder="leader")
    service.register_source(HealthWatchSource(service, registry=registry))
    try:
        assert guard.submit(plan.rollout_id).result(timeout=60) == RolloutState.committed
        assert _served_batch(engine) == 4
        with sessions() as s:
            committed = rollouts.get_rollout(s, plan.rollout_id)
            previous_config_id = committed.from_config_id
        service.start()
        deadline = time.monotonic() + 20
        while not service.is_leader and time.monotonic() < deadline:
            time.sleep(0.1)
        service.refresh()
        time.sleep(1.0)  # a few passing checks first
        assert not rolled_back.is_set()

        stopped_at = time.monotonic()
        os.kill(engine.process.pid, signal.SIGSTOP)
        assert rolled_back.wait(30), [e.kind for e in events]
        detected_s = time.monotonic() - stopped_at
        os.kill(engine.process.pid, signal.SIGCONT)
        (event,) = [e for e in events if e.kind == "health.rollback"]
        assert "3 inference checks in a row failed" in event.summary
        assert event.detail["last_error"].startswith("timeout")
        # Three checks half a second apart, each timing out after half a second.
        assert detected_s >= 2 * WATCH.interval_s

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with sessions() as s:
                back = rollouts.get_rollout(s, event.rollout_id)
                if back.state in ("committed", "failed", "rolled_back"):
                    break
            time.sleep(0.2)
        assert back.state == "committed", (back.state, back.error)
        assert back.reason == "health" and back.to_config_id == previous_config_id
        assert _served_batch(engine) == 8
        with sessions() as s:
            lkg = configs.last_known_good(s, engine_id)
            assert lkg is not None and lkg.id == previous_config_id
        reply = httpx.post(
            f"{engine.url}/v1/completions",
            json={"model": "tiny", "prompt": "hello", "max_tokens": 2},
            timeout=30,
        )
        assert reply.status_code == 200
        assert registry.get_sample_value("cplane_health_rollbacks_total", {"engine": "ref"}) == 1
        assert [e.kind for e in events][-1] == "rollout.committed"
    finally:
        service.shutdown()
        guard.shutdown()
