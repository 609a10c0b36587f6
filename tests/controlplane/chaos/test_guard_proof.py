"""The guard holds under chaos: a real engine in one namespace, the load in the other (the
project's load generator run there), the guard's scrapes entering the client namespace through
a bridge (so they cross the faulted veth too), and a fault applied while a change bakes.

- A harmless change under a network delay (the delaying proxy on the engine's port, or netem
  where the kernel has it) is committed: the fault is the network's, not the config's, and the
  guard judges the engine by its own latency, so it must not roll back.
- A change too slow for the load (a 400 ms queue delay) is rolled back while a rate cap is on
  the path.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Generator
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from controlplane.chaos import Injector
from controlplane.chaos import Outcome
from controlplane.chaos import Topology
from controlplane.chaos import hold
from controlplane.chaos import parse_fault
from controlplane.chaos import parse_target
from controlplane.domain import RolloutState
from controlplane.engines import adapter_for
from controlplane.guard import RolloutRunner
from controlplane.guard import propose
from controlplane.settings import ChaosSettings
from controlplane.settings import Settings
from controlplane.store import engines
from controlplane.store import rollouts
from controlplane.store import schema
from controlplane.store.database import SessionFactory
from controlplane.store.database import make_engine
from controlplane.store.database import make_session_factory
from controlplane.store.database import unit_of_work
from tests.controlplane.chaos.conftest import NETPROBE
from tests.controlplane.guard.conftest import FAST
from tests.controlplane.guard.conftest import register
from tests.fixtures.engines import ENGINE_BIN
from tests.fixtures.engines import RunningEngine
from tests.fixtures.engines import free_port

pytestmark = [pytest.mark.slow, pytest.mark.netns]


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[SessionFactory]:
    engine = make_engine(Settings(data_dir=tmp_path))
    schema.upgrade(engine)
    yield make_session_factory(engine)
    engine.dispose()


def start_engine_in(topo: Topology, log_dir: Path) -> Generator[RunningEngine, None, None]:
    """``cplane-engine`` in the server namespace; reachable from here through a bridge."""
    token = secrets.token_urlsafe(16)
    log = log_dir / "engine.log"
    env = {**os.environ, "CPLANE_ENGINE_ADMIN_TOKEN": token}
    with log.open("wb") as out:
        serve = [ENGINE_BIN, "serve", "--model", "tiny", "--host", topo.server_ip]
        serve += ["--port", "8000", "--batch-size", "8"]
        engine = subprocess.Popen(
            ["ip", "netns", "exec", topo.server, *serve], stdout=out, stderr=out, env=env
        )
    port = free_port()
    bridge = subprocess.Popen(
        [sys.executable, NETPROBE, "bridge", str(port), topo.client, f"{topo.server_ip}:8000"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert bridge.stdout is not None and bridge.stdout.readline().strip() == "ready"
    running = RunningEngine(f"http://127.0.0.1:{port}", token, engine, log)
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                if httpx.get(f"{running.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert engine.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield running
    finally:
        running.stop()
        bridge.kill()
        bridge.wait()
        bridge.stdout.close()


@pytest.fixture(scope="module")
def ns_engine(
    shared_topo: Topology, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningEngine]:
    yield from start_engine_in(shared_topo, tmp_path_factory.mktemp("engine"))


@pytest.fixture
def topo(shared_topo: Topology) -> Topology:
    return shared_topo


def _propose(
    sessions: SessionFactory, engine_id: int, changes: dict[str, Any], bake_s: float
) -> int:
    with unit_of_work(sessions) as s:
        row = engines.get_engine(s, engine_id)
        adapter = adapter_for(engines.engine_target(row))
        try:
            plan = propose(
                s,
                engine=row,
                adapter=adapter,
                changes=changes,
                reason="manual",
                actor="user:t",
                bake_s=bake_s,
            )
        finally:
            adapter.close()
    assert plan.rollout_id is not None
    return plan.rollout_id


class NsLoad:
    """Closed-loop load from inside the client namespace, in a subprocess."""

    def __init__(self, topo: Topology, *, seconds: float, concurrency: int) -> None:
        url = f"http://{topo.server_ip}:8000"
        argv = [sys.executable, NETPROBE, "load", url, str(seconds), str(concurrency)]
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", topo.client, *argv], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready"
        time.sleep(0.5)  # the guard's baseline needs traffic already flowing

    def stop(self) -> None:
        self.proc.kill()
        self.proc.communicate()

    def join(self) -> dict[str, Any]:
        out, _ = self.proc.communicate(timeout=120)
        result: dict[str, Any] = json.loads(out.splitlines()[-1])
        return result


class FaultDuringBake:
    """Injects the fault before the load starts (so every connection of the load crosses it)
    and holds it in a thread until the guard has decided."""

    def __init__(self, target: str, fault: str, state: Path) -> None:
        self.done = threading.Event()
        self.outcome: Outcome | None = None
        self.error: BaseException | None = None
        self.injection = Injector(ChaosSettings(ttl_grace_s=1.0), state).inject(
            "bake", parse_target(target), parse_fault(fault), ttl_s=60
        )
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.outcome = hold(self.injection, 60, stop=self.done)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            self.error = exc

    def finish(self) -> Outcome:
        self.done.set()
        self._thread.join(timeout=30)
        if self.error is not None:
            raise self.error
        assert self.outcome is not None
        return self.outcome


def test_network_delay_does_not_roll_back_a_harmless_change(
    sessions: SessionFactory, ns_engine: RunningEngine, topo: Topology, tmp_path: Path
) -> None:
    engine_id = register(sessions, ns_engine, "p99_s<=10", "error_rate<=1%")
    rollout_id = _propose(sessions, engine_id, {"max_queue_delay_ms": 1.0}, bake_s=4.0)
    fault = FaultDuringBake(f"netns:{topo.server}:8000", "delay 50ms", tmp_path / "st")
    load = NsLoad(topo, seconds=10, concurrency=4)
    state = RolloutRunner(session_factory=sessions, policy=FAST).execute(rollout_id)
    # The load ends before the fault is removed: what the fault costs is measured, not the
    # teardown (the proxy's removal can cut a keep-alive request in flight; see docs/chaos.md).
    result = load.join()
    outcome = fault.finish()
    assert state is RolloutState.committed
    assert outcome.mechanisms and outcome.held_s > 4.0
    proof = outcome.counters_after
    if "delay" in outcome.mechanisms:
        assert proof["proxy"]["chunks_delayed"] > 20  # the load really went through it
    assert result["failed"] == 0, result["errors"]


def test_a_slow_change_is_rolled_back_under_a_rate_cap(
    sessions: SessionFactory, ns_engine: RunningEngine, topo: Topology, tmp_path: Path
) -> None:
    # Fewer clients than the batch size: with a 400 ms queue delay an idle executor waits the
    # whole delay for a batch that never fills, so every request gets slower by about 400 ms.
    warm = NsLoad(topo, seconds=2, concurrency=4).join()
    assert warm["p99_s"] is not None
    engine_id = register(sessions, ns_engine, f"p99_ms<={max(1, round(warm['p99_s'] * 1500))}")
    rollout_id = _propose(sessions, engine_id, {"max_queue_delay_ms": 400.0}, bake_s=20.0)
    fault = FaultDuringBake(f"netns:{topo.server}", "rate 50mbit", tmp_path / "st")
    load = NsLoad(topo, seconds=25, concurrency=4)
    state = RolloutRunner(session_factory=sessions, policy=FAST).execute(rollout_id)
    load.stop()
    outcome = fault.finish()
    with sessions() as s:
        evidence = rollouts.get_rollout(s, rollout_id).evidence
    assert state is RolloutState.rolled_back, (warm, evidence.get("verdict"))
    assert evidence["verdict"]["outcome"] == "breach"
    assert outcome.mechanisms in ({"rate": "tbf"}, {"network": "netem"})
