"""The in-tree fake engine passes the same adapter contract as the real ones, so tests that
run the guard on it test the guard, not a fake's quirks; and its scripted faults do what
the guard's tests rely on."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator

import httpx
import pytest

from controlplane.domain import EngineRejectedError
from controlplane.domain import EngineUnreachableError
from controlplane.domain import Series
from controlplane.domain import parse_slo
from controlplane.domain.windows import violations
from controlplane.engines.base import EngineAdapter
from controlplane.guard.probe import MetricsProbe
from tests.controlplane.engines.contract import EngineAdapterContract
from tests.fixtures.fake_adapter import Behaviour
from tests.fixtures.fake_adapter import FakeClock
from tests.fixtures.fake_adapter import FakeEngine


@pytest.fixture
def fake_engine() -> Iterator[FakeEngine]:
    with FakeEngine() as engine:
        yield engine


@pytest.fixture
def adapter(fake_engine: FakeEngine) -> Iterator[EngineAdapter]:
    adapter = fake_engine.adapter(fake_engine.target())
    yield adapter
    adapter.close()


@pytest.fixture
def send_request(fake_engine: FakeEngine) -> Callable[[], None]:
    return fake_engine.serve


class TestFakeAdapter(EngineAdapterContract):
    pass


def test_latency_and_errors_follow_the_scripted_config() -> None:
    clock = FakeClock()
    slow = Behaviour(slow_fraction=0.5, error_fraction=0.1)
    with FakeEngine(
        clock=clock,
        rate_rps=100,
        behaviour=lambda c: slow if c["max_batch_size"] == 1 else Behaviour(),
    ) as engine:
        adapter = engine.adapter(engine.target())
        probe = MetricsProbe(adapter)
        try:
            before = probe.snapshot()
            clock.advance(10)  # 1,000 requests on the fast default
            adapter.apply({"max_batch_size": 1})
            middle = probe.snapshot()
            clock.advance(10)  # 1,000 on batch 1: 100 fail, half the rest are slow
            after = probe.snapshot()
        finally:
            probe.close()
            adapter.close()
    assert before is not None and middle is not None and after is not None
    p99 = parse_slo("p99_s<=1")
    errors = parse_slo("error_rate<=1%")
    fast = violations(middle.since(before), p99)
    assert (fast.n, fast.k) == (1000, 0)
    window = after.since(middle)
    assert (violations(window, p99).n, violations(window, p99).k) == (900, 450)
    assert (violations(window, errors).n, violations(window, errors).k) == (1000, 100)
    assert window.values[Series.requests_failed.value] == 100


def test_faults_refuse_an_apply_and_make_the_engine_unreachable(fake_engine: FakeEngine) -> None:
    adapter = fake_engine.adapter(fake_engine.target())
    fake_engine.fail_next_apply(EngineRejectedError("no", field="max_batch_size"))
    with pytest.raises(EngineRejectedError):
        adapter.apply({"max_batch_size": 4})
    assert adapter.current_config()["max_batch_size"] == 8 and fake_engine.applied == []
    assert adapter.apply({"max_batch_size": 4})["max_batch_size"] == 4  # only the next one
    fake_engine.unreachable = True
    assert not adapter.health().ok
    with pytest.raises(EngineUnreachableError):
        adapter.apply({"max_batch_size": 8})
    assert httpx.get(adapter.metrics_url).status_code == 503
    fake_engine.unreachable = False
    assert adapter.current_config()["max_batch_size"] == 4
    assert fake_engine.adapters_open == 1
    adapter.close()
    assert fake_engine.adapters_open == 0
