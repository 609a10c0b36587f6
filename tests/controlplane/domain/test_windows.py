from __future__ import annotations

import math

from controlplane.domain import Sample
from controlplane.domain import parse_slo
from controlplane.domain.windows import Snapshot
from controlplane.domain.windows import violations

BOUNDS = (0.1, 0.25, 0.5, 1.0, math.inf)


def _scrape(ts: float, counts: tuple[float, ...], ok: float, failed: float) -> Snapshot:
    samples = [
        Sample(ts, "e", "request_latency_seconds_bucket", (("le", str(b)), ("m", m)), c / 2)
        for b, c in zip(BOUNDS, counts, strict=True)
        for m in ("a", "b")  # two label sets, summed
    ]
    samples.append(Sample(ts, "e", "requests_succeeded_total", (), ok))
    samples.append(Sample(ts, "e", "requests_failed_total", (), failed))
    return Snapshot.of(samples, ts=ts)


def test_latency_violations_use_the_smallest_bound_at_or_over_the_threshold() -> None:
    before = _scrape(0, (10, 20, 30, 40, 40), ok=40, failed=0)
    after = _scrape(1, (10, 60, 110, 130, 140), ok=138, failed=2)
    window = after.since(before)
    slo = parse_slo("p99_ms<=200")
    result = violations(window, slo)
    assert (result.n, result.bound) == (100, 0.25)
    assert result.k == 100 - 40  # requests above 250 ms in the window
    errors = violations(window, parse_slo("error_rate<=1%"))
    assert (errors.n, errors.k) == (100, 2)


def test_a_restart_counts_the_new_values_whole() -> None:
    before = _scrape(0, (100, 200, 300, 400, 400), ok=400, failed=0)
    after = _scrape(1, (1, 2, 3, 4, 5), ok=5, failed=0)
    assert violations(after.since(before), parse_slo("p99_ms<=500")).n == 5


def test_a_gauge_going_down_is_not_a_restart() -> None:
    def scrape(ts: float, running: float, ok: float) -> Snapshot:
        return Snapshot.of(
            [
                Sample(ts, "e", "requests_running", (), running),
                Sample(ts, "e", "requests_succeeded_total", (), ok),
                Sample(ts, "e", "requests_failed_total", (), 0),
            ],
            ts=ts,
        )

    window = scrape(1, running=0, ok=130).since(scrape(0, running=4, ok=100))
    assert violations(window, parse_slo("error_rate<=1%")).n == 30


def test_no_histogram_is_no_data() -> None:
    empty = Snapshot.of([], ts=0)
    result = violations(empty, parse_slo("p99_ms<=200"))
    assert (result.n, result.k, result.rate) == (0, 0, None)


def test_threshold_beyond_the_last_finite_bound_has_no_bound() -> None:
    window = _scrape(1, (1, 2, 3, 4, 5), ok=5, failed=0)
    assert violations(window, parse_slo("p99_s<=30")).bound is None
