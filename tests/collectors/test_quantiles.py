from __future__ import annotations

import math

import pytest

from collectors import histogram_quantile
from collectors import increase
from collectors._query import quantile_series
from collectors._query import rate_series

INF = math.inf
B = [(0.1, 10.0), (0.5, 60.0), (1.0, 90.0), (INF, 100.0)]


def test_interpolates_inside_the_bucket() -> None:
    # rank 50 lies in (0.1, 0.5]: 0.1 + 0.4 * (40 / 50)
    assert histogram_quantile(0.5, B) == pytest.approx(0.42)
    assert histogram_quantile(0.05, B) == pytest.approx(0.05)  # first bucket starts at 0


def test_rank_in_inf_bucket_returns_highest_finite_bound() -> None:
    assert histogram_quantile(0.99, B) == 1.0


@pytest.mark.parametrize(("q", "expected"), [(-0.1, -INF), (1.1, INF)], ids=["below-0", "above-1"])
def test_out_of_range_q(q: float, expected: float) -> None:
    assert histogram_quantile(q, B) == expected


@pytest.mark.parametrize(
    "buckets",
    [[(0.1, 1.0), (1.0, 2.0)], [(INF, 5.0)], [(0.1, 0.0), (INF, 0.0)], []],
    ids=["no-inf", "only-inf", "no-observations", "empty"],
)
def test_nan_cases(buckets: list[tuple[float, float]]) -> None:
    assert math.isnan(histogram_quantile(0.5, buckets))


def test_nan_q_and_unsorted_duplicates_and_non_monotonic() -> None:
    assert math.isnan(histogram_quantile(math.nan, B))
    shuffled = [B[2], B[0], B[3], B[1]]
    assert histogram_quantile(0.5, shuffled) == pytest.approx(0.42)
    # A decreasing count (scrape skew) is flattened, as Prometheus does.
    assert histogram_quantile(0.5, [(0.1, 10), (0.5, 60), (1.0, 55), (INF, 100)]) == (
        pytest.approx(0.42)
    )


def test_non_positive_lowest_bound() -> None:
    assert histogram_quantile(0.1, [(-1.0, 5.0), (0.0, 10.0), (INF, 20.0)]) == -1.0


def test_q_zero_with_empty_first_bucket_is_nan_like_go() -> None:
    assert math.isnan(histogram_quantile(0.0, [(0.1, 0.0), (INF, 10.0)]))


def test_increase_handles_counter_resets() -> None:
    assert increase([10, 15, 3, 8]) == 5 + 3 + 5
    assert increase([5]) == 0


def test_rate_and_quantile_series_across_a_restart() -> None:
    points = [(0.0, 100.0), (10.0, 150.0), (20.0, 20.0), (30.0, 70.0)]
    (point,) = rate_series(points, start=0.0, end=30.0, step=30.0, window=30.0)
    assert point == (30.0, pytest.approx((50 + 20 + 50) / 30))
    buckets = {0.5: [(0.0, 0.0), (10.0, 50.0)], INF: [(0.0, 0.0), (10.0, 100.0)]}
    (q,) = quantile_series(buckets, 0.25, start=0.0, end=10.0, step=10.0, window=10.0)
    assert q == (10.0, pytest.approx(0.25))
