"""Load specs, requests, constraints and the stability rule: the pure parts of the tuner."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError as PydanticError

from controlplane.domain import Knob
from controlplane.domain import SearchSpace
from controlplane.domain import ValidationError
from controlplane.domain import parse_slo
from controlplane.schemas.tuning import TuningCreate
from controlplane.schemas.tuning import parse_load
from controlplane.settings import TunerSettings
from tuner import Measurement
from tuner import TuningSpace
from tuner import Window
from tuner import is_stable
from tuner import measure_until_stable
from tuner import score


def _window(throughput: float, p99_s: float, goodput: float | None = None) -> Window:
    return Window(
        duration_s=1.0,
        requests=int(throughput),
        throughput=throughput,
        goodput=throughput if goodput is None else goodput,
        p50_s=p99_s / 2,
        p99_s=p99_s,
        quantiles_s={"p99": p99_s},
        error_rate=0.0,
    )


@pytest.mark.parametrize(
    ("text", "mode", "spec"),
    [
        ("rate=40", "constant", "rate=40,shapes=16x8"),
        ("rate=2.5,arrivals=poisson", "poisson", "rate=2.5,arrivals=poisson,shapes=16x8"),
        ("concurrency=16,shapes=32x16+256x64", "closed", "concurrency=16,shapes=32x16+256x64"),
        (" LIVE ", "live", "live"),
    ],
)
def test_load_specs_parse_and_round_trip(text: str, mode: str, spec: str) -> None:
    profile = parse_load(text)
    assert profile.mode == mode and profile.spec() == spec
    assert parse_load(profile.spec()) == profile


@pytest.mark.parametrize(
    "text",
    ["", "rate=", "rate=-1", "rate=fast", "rate=inf", "rate=4,concurrency=2", "speed=4",
     "concurrency=0", "concurrency=2,arrivals=poisson", "rate=4,arrivals=bursty",
     "rate=4,shapes=16", "rate=4,rate=5"],
)  # fmt: skip
def test_bad_load_specs_are_one_clear_error(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_load(text)
    assert info.value.field == "load" and "\n" not in str(info.value)


def test_requests_validate_slo_load_and_budget_at_the_edge() -> None:
    ok = TuningCreate.model_validate({"slo": ["P99_MS<=300"], "load": "rate=40", "trials": 1})
    assert ok.slo == ["p99_ms<=300"] and ok.load == "rate=40,shapes=16x8"
    for bad in ({"slo": ["p99<=fast"]}, {"load": "rate=x"}, {"trials": 0}, {"objective": "x"},
                {"sampler": "magic"}, {"unknown": 1}):  # fmt: skip
        with pytest.raises(PydanticError):
            TuningCreate.model_validate(bad)


def test_space_comes_from_the_adapter_and_rejects_unknown_knobs() -> None:
    space = SearchSpace(
        (
            Knob("max_batch_size", "int", choices=(1, 2, 4), low=1, high=64),
            Knob("precision", "choice", choices=("fp32", "int8")),
            Knob("max_queue_delay_ms", "float", low=0.0, high=10.0, default=1.0),
        )
    )
    tuned = TuningSpace.of(space, knobs=["max_batch_size", "precision"])
    assert tuned.size() == 6 and len(list(tuned.configs())) == 6
    assert TuningSpace.of(space).grid()["max_queue_delay_ms"] == [0.0, 1.0, 10.0]
    assert tuned.params_of({"max_batch_size": 2, "precision": "int8", "x": 1}) == {
        "max_batch_size": 2,
        "precision": "int8",
    }
    assert tuned.params_of({"max_batch_size": 3, "precision": "int8"}) is None
    with pytest.raises(ValidationError):
        TuningSpace.of(space, knobs=["streams"])


def test_slos_are_constraints_with_a_margin_not_penalties() -> None:
    slos = [parse_slo("p99_ms<=300"), parse_slo("error_rate<=1%")]
    fast = Measurement((_window(100, 0.250),), stable=True, used=1)
    edge = Measurement((_window(100, 0.290),), stable=True, used=1)
    fast_s = score(fast, slos, objective="goodput", margin=0.1)
    edge_s = score(edge, slos, objective="goodput", margin=0.1)
    # The objective is the goodput alone, whatever the constraints say.
    assert fast_s.values == edge_s.values == (100.0,)
    assert fast_s.feasible and fast_s.constraints["p99"] == pytest.approx((0.25 - 0.27) / 0.3)
    # Within the SLO but inside the 10 % margin: infeasible.
    assert not edge_s.feasible and edge_s.constraints["p99"] > 0
    assert edge_s.constraints["error_rate"] < 0
    assert score(edge, slos, objective="goodput", margin=0.0).feasible
    pareto = score(fast, slos, objective="pareto", margin=0.1)
    assert pareto.values == (100.0, 250.0)
    nothing = Measurement((), stable=False, used=0)
    assert not score(nothing, slos, objective="p99", margin=0.1).feasible


def test_measurement_windows_grow_until_three_agree() -> None:
    lengths: list[float] = []
    series = iter([(100, 0.2), (150, 0.3), (101, 0.2), (104, 0.21), (99, 0.2), (100, 0.2)])

    def window(length: float) -> Window:
        lengths.append(length)
        throughput, p99 = next(series)
        return _window(throughput, p99)

    warm: list[float] = []
    policy = TunerSettings(warmup_s=2, window_s=1, min_windows=3, max_windows=8, tolerance=0.1)
    m = measure_until_stable(window, policy=policy, warmup=warm.append)
    assert warm == [2]  # warm-up ran and is not among the windows
    assert m.stable and len(m.windows) == 5 and m.used == 3
    assert lengths == [1, 1, 1, 1.5, 2.25]  # grows once 3 windows disagree
    assert m.throughput == pytest.approx((101 + 104 + 99) / 3)
    assert is_stable(m.windows, n=3, tolerance=0.1)


def test_an_unstable_engine_gives_up_after_the_limit() -> None:
    values = iter([100, 200] * 10)
    policy = TunerSettings(warmup_s=0, window_s=1, min_windows=3, max_windows=5, tolerance=0.1)
    m = measure_until_stable(lambda s: _window(next(values), 0.2), policy=policy)
    assert not m.stable and len(m.windows) == 5 and m.used == 3
    assert math.isfinite(m.throughput)


def test_live_windows_come_from_engine_counters_and_histograms() -> None:
    from controlplane.domain.windows import Snapshot
    from tuner._measure import live_window

    # 100 requests in 10 s: 90 within 0.25 s, 8 more within 0.5 s, 2 slower; 1 failed.
    buckets = {0.1: 50.0, 0.25: 90.0, 0.5: 98.0, 1.0: 100.0, float("inf"): 100.0}
    window = Snapshot(
        ts=10.0,
        buckets={"request_latency_seconds": buckets},
        values={"requests_succeeded_total": 99.0, "requests_failed_total": 1.0},
    )
    slos = [parse_slo("p99_ms<=250"), parse_slo("error_rate<=1%")]
    w = live_window(window, slos, duration_s=10.0)
    assert w.throughput == pytest.approx(9.9)
    assert w.goodput == pytest.approx((99 - 10) / 10)  # 10 requests above the 250 ms bucket
    assert w.error_rate == pytest.approx(0.01)
    assert w.p99_s is not None and 0.5 < w.p99_s <= 1.0
    assert w.quantiles_s["p99"] == w.p99_s
