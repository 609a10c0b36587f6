"""Canary rollouts on a real two-replica process engine behind a real HAProxy, under load
from the project's load generator: a harmless change steps up its share and goes to every
replica; a slow one is caught at 1 % of traffic, its share sent to 0 and its config
restored; every step keeps its evidence on the rollout."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from controlplane.domain import RolloutState
from controlplane.domain import ValidationError
from controlplane.domain import parse_slo
from controlplane.domain.canary import parse_canary_plan
from controlplane.domain.windows import Window
from controlplane.engines import adapter_for
from controlplane.engines.process import ProcessSpec
from controlplane.engines.process import Supervisor
from controlplane.engines.process import running
from controlplane.guard import RolloutRunner
from controlplane.guard import propose
from controlplane.guard.canary import judge
from controlplane.schemas.engines import EngineCreate
from controlplane.store import engines
from controlplane.store import rollouts
from controlplane.store import slos
from controlplane.store.database import SessionFactory
from controlplane.store.database import unit_of_work
from tests.controlplane.guard.conftest import FAST
from tests.fixtures.db import SQLITE_ONLY
from tests.fixtures.engines import ENGINE_BIN
from tests.fixtures.engines import requires_haproxy
from tuner.loadgen import LoadResult
from tuner.loadgen import LoadSpec
from tuner.loadgen import RequestShape
from tuner.loadgen import run_load_sync

NAME = "fleet"
# A share of a small load reaches min_requests within seconds, not the bake's 20 requests.
POLICY = FAST.model_copy(update={"min_requests": 10, "no_data_timeout_s": 15.0})


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Supervisor]:
    spec = ProcessSpec(
        name=NAME,
        preset="reference",
        command=(ENGINE_BIN, "serve", "--model", "tiny"),
        replicas=2,
        config={"max_batch_size": 8},
    )
    sup = Supervisor(spec, tmp_path_factory.mktemp("fleet"))
    sup.start()
    running.register(sup)
    yield sup
    running.unregister(NAME)
    sup.stop()


class UntilStopped:
    """Poisson arrivals at ``rate`` in short runs of the load generator, until stopped."""

    def __init__(self, url: str, *, rate: float) -> None:
        self._url, self._rate = url, rate
        self._stop = threading.Event()
        self.results: list[LoadResult] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            spec = LoadSpec(
                base_url=self._url,
                model="tiny",
                mode="poisson",
                rate=self._rate,
                duration_s=2.0,
                shapes=(RequestShape(prompt_len=16, max_tokens=8),),
                extra_body={"ignore_eos": True},
            )
            self.results.append(run_load_sync(spec))

    def stop(self) -> list[LoadResult]:
        self._stop.set()
        self._thread.join(timeout=60)
        return self.results


def _register(sessions: SessionFactory, url: str, *slo_specs: str) -> int:
    with unit_of_work(sessions) as s:
        data = EngineCreate.model_validate({"name": NAME, "kind": "process", "url": url})
        row = engines.add_engine(s, data=data, actor="t")
        for spec in slo_specs:
            slos.set_slo(s, engine_id=row.id, slo=parse_slo(spec), actor="t")
        return row.id


def _propose(sessions: SessionFactory, engine_id: int, changes: dict[str, Any], plan: str) -> int:
    with unit_of_work(sessions) as s:
        row = engines.get_engine(s, engine_id)
        adapter = adapter_for(engines.engine_target(row))
        try:
            proposed = propose(
                s,
                engine=row,
                adapter=adapter,
                changes=changes,
                reason="manual",
                actor="user:t",
                bake_s=FAST.bake_s,
                canary=plan,
            )
        finally:
            adapter.close()
    assert proposed.rollout_id is not None
    assert proposed.canary == [st.spec() for st in parse_canary_plan(plan)]
    return proposed.rollout_id


@SQLITE_ONLY
@pytest.mark.slow
@requires_haproxy
def test_a_harmless_canary_steps_up_and_goes_to_every_replica(
    sessions: SessionFactory, fleet: Supervisor
) -> None:
    engine_id = _register(sessions, fleet.url, "p99_s<=10", "error_rate<=1%")
    rollout_id = _propose(sessions, engine_id, {"max_queue_delay_ms": 1.0}, "20%:1s,50%:1s")
    # Load for as long as the rollout takes (the canary's own switch is a process start).
    load = UntilStopped(fleet.url, rate=20)
    try:
        state = RolloutRunner(session_factory=sessions, policy=POLICY).execute(rollout_id)
    finally:
        results = load.stop()

    assert state is RolloutState.committed
    assert [fleet.config(i)["max_queue_delay_ms"] for i in (0, 1)] == [1.0, 1.0]
    assert fleet.weight(0) == fleet.weight(1)
    with sessions() as s:
        evidence = rollouts.get_rollout(s, rollout_id).evidence
    steps = evidence["canary"]["steps"]
    assert [st["verdict"] for st in steps] == ["pass", "pass"]
    assert [st["share"] for st in steps] == [0.2, 0.5]
    assert abs(steps[0]["achieved_share"] - 0.2) < 0.01
    assert steps[1]["slos"]["p99"]["canary"]["n"] > 0  # judged on its own requests
    assert steps[1]["slos"]["p99"]["fleet"]["n"] > 0  # against the other replica's
    assert sum(r.sent - r.ok for r in results) == 0


@SQLITE_ONLY
@pytest.mark.slow
@requires_haproxy
def test_a_slow_canary_is_stopped_at_one_percent(
    sessions: SessionFactory, fleet: Supervisor
) -> None:
    before = fleet.config(1)
    # Each request waits up to a second for its batch to fill: slower than the SLO.
    engine_id = _register(sessions, fleet.url, "p99_ms<=500")
    rollout_id = _propose(
        sessions,
        engine_id,
        {"max_queue_delay_ms": 1000.0, "max_batch_size": 64},
        "1%:60s,50%:10s",
    )
    load = UntilStopped(fleet.url, rate=40)
    try:
        state = RolloutRunner(session_factory=sessions, policy=POLICY).execute(rollout_id)
    finally:
        load.stop()

    assert state is RolloutState.rolled_back
    assert fleet.config(1) == before
    assert fleet.weight(0) == fleet.weight(1)
    with sessions() as s:
        evidence = rollouts.get_rollout(s, rollout_id).evidence
    (step,) = evidence["canary"]["steps"]
    assert step["share"] == 0.01 and step["verdict"] == "breach"
    assert step["slos"]["p99"]["canary"]["k"] > 0
    assert "canary" in evidence["verdict"]["summary"]
    assert evidence["rollback"]["restored"] is True
    assert evidence["rollback"]["breach_to_weight_0_s"] >= 0


def test_judge_compares_the_canary_with_the_fleet_at_the_same_time() -> None:
    slo = parse_slo("p99_ms<=500")
    quiet_fleet = Window(n=1000, k=5, bound=0.5)
    # Ten violations in twelve: far above what the fleet does beside it.
    assert judge(Window(12, 10, 0.5), quiet_fleet, slo, alpha=0.05, min_requests=20).breach
    # The same canary while the whole fleet stalls: not the new config's fault.
    stalled = Window(n=1000, k=800, bound=0.5)
    assert not judge(Window(12, 10, 0.5), stalled, slo, alpha=0.05, min_requests=20).breach
    assert not judge(Window(0, 0, None), quiet_fleet, slo, alpha=0.05, min_requests=20).breach


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ("10%:1m,5%:1m", "shares must rise"),
        ("10%:1m,10%:1m", "shares must rise"),
        ("1%:thirty", "is not <percent>%:<duration>"),
        ("1%:30", "is not <percent>%:<duration>"),
        ("100%:1m", "below 100%"),
        ("0%:1m", "above 0%"),
        ("", "1 to 20 steps"),
    ],
)
def test_bad_canary_plans_are_refused(plan: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        parse_canary_plan(plan)
    assert info.value.field == "canary"


def test_the_default_plan_parses_to_rising_steps() -> None:
    steps = parse_canary_plan("1%:30m,10%:10m,50%:10m")
    assert [(s.share, s.hold_s) for s in steps] == [(0.01, 1800), (0.1, 600), (0.5, 600)]
