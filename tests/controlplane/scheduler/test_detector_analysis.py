"""The detectors' arithmetic on synthetic series: a leak above the threshold is flagged, one
below it and an idle engine are not, and neither a config switch's step nor a restart reads
as growth; a swinging request rate is flagged only above the traffic floor."""

from __future__ import annotations

import pytest

from controlplane.scheduler.detectors import leak
from controlplane.scheduler.detectors import qps_swing
from controlplane.scheduler.detectors._analysis import rates
from tests.fixtures.synthetic_series import EngineSeries
from tests.fixtures.synthetic_series import generate

POLICY = {"threshold": 0.12, "min_requests": 20_000, "min_points": 12, "step_fraction": 0.05}
HOURS = 3600.0


def _leak(series: EngineSeries, *, recorded: bool = True) -> tuple[float | None, bool]:
    verdict = leak(
        series.memory, series.counter, changes=series.changes if recorded else (), **POLICY
    )
    return verdict.growth, verdict.leaking


def test_a_leak_above_the_threshold_fires_with_its_growth_measured() -> None:
    growth, leaking = _leak(generate(seconds=2 * HOURS, leak_per_100k=0.2))
    assert leaking
    assert growth == pytest.approx(0.2, rel=0.1)


@pytest.mark.parametrize("rate", [0.0, 0.03, 0.08])
def test_growth_below_the_threshold_stays_quiet(rate: float) -> None:
    growth, leaking = _leak(generate(seconds=2 * HOURS, leak_per_100k=rate, seed=3))
    assert not leaking
    assert growth is not None and growth == pytest.approx(rate, abs=0.02)


def test_an_idle_engine_is_not_judged() -> None:
    verdict = leak(**{"memory": [], "counter": []}, **POLICY)
    assert verdict.growth is None and not verdict.leaking
    idle = generate(seconds=2 * HOURS, rps=0.0, leak_per_100k=0.5)
    growth, leaking = _leak(idle)
    assert growth is None and not leaking


@pytest.mark.parametrize("recorded", [True, False])
def test_a_config_switch_step_does_not_fire(recorded: bool) -> None:
    # +30 % at once in the middle of 180k requests, no growth on either side: a fit over the
    # whole window would read the step as a leak of about 19 % per 100k requests.
    series = generate(seconds=HOURS / 2, switch_at=HOURS / 4, switch_step=0.3)
    naive = leak(series.memory, series.counter, **{**POLICY, "step_fraction": 1.0})
    assert naive.leaking  # the trap is real
    growth, leaking = _leak(series, recorded=recorded)
    assert not leaking and growth is not None and abs(growth) < 0.03


def test_a_restart_starts_a_new_segment() -> None:
    series = generate(seconds=2 * HOURS, leak_per_100k=0.2, restart_at=1.5 * HOURS)
    verdict = leak(series.memory, series.counter, changes=series.changes, **POLICY)
    assert verdict.segments == 2 and verdict.leaking  # leaks again after the restart
    early = generate(seconds=2 * HOURS, leak_per_100k=0.2, restart_at=2 * HOURS - 60)
    verdict = leak(early.memory, early.counter, **POLICY)
    assert verdict.growth is None  # too few requests since the restart: not known yet


def test_rates_skip_counter_resets() -> None:
    assert rates([(0, 0), (10, 100), (20, 5), (30, 105)]) == [10.0, 10.0]


QPS = {"threshold": 0.2, "min_rps": 1.0, "min_points": 8}


def test_a_swinging_rate_fires_and_a_steady_one_does_not() -> None:
    swinging = generate(seconds=600, rps=50, rps_swing=0.5)
    verdict = qps_swing(swinging.counter, **QPS)
    assert verdict.swinging and verdict.cv == pytest.approx(0.5, abs=0.05)
    steady = generate(seconds=600, rps=50, rps_swing=0.05)
    verdict = qps_swing(steady.counter, **QPS)
    assert not verdict.swinging and verdict.cv is not None and verdict.cv < 0.1


def test_a_swinging_engine_below_the_traffic_floor_is_quiet() -> None:
    verdict = qps_swing(generate(seconds=600, rps=0.5, rps_swing=0.9).counter, **QPS)
    assert verdict.cv is not None and verdict.cv > 0.2 and not verdict.swinging
    idle = qps_swing(generate(seconds=600, rps=0.0).counter, **QPS)
    assert idle.cv is None and not idle.swinging


def test_too_few_points_are_not_judged() -> None:
    verdict = qps_swing(generate(seconds=60, rps=50, rps_swing=0.9).counter, **QPS)
    assert verdict.cv is None and not verdict.swinging
