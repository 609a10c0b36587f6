"""The decision rule's two promises, checked by simulation with fixed seeds: few false
rejections when the new config is as good as allowed (even when peeking after every request),
and fast rejection when it is clearly worse."""

from __future__ import annotations

import numpy as np
import pytest

from controlplane.guard.sequential import MixtureSPRT
from controlplane.guard.sequential import StaggeredMonitor
from controlplane.guard.sequential import upper_bound


def _first_rejection(test: MixtureSPRT, violations: np.ndarray, *, every: int = 5) -> int | None:
    k = np.cumsum(violations)
    for n in range(every, len(violations) + 1, every):
        if test.rejects(n, int(k[n - 1])):
            return n
    return None


def test_false_rejections_stay_under_alpha_with_continuous_peeking() -> None:
    rng = np.random.default_rng(7)
    test = MixtureSPRT(p0=0.01, alpha=0.05)
    runs, rejected = 200, 0
    for _ in range(runs):
        # Peek after every 5 of 1,500 requests at exactly the allowed rate.
        if _first_rejection(test, rng.random(1500) < 0.01) is not None:
            rejected += 1
    assert rejected / runs <= 0.05


def test_a_clear_breach_is_rejected_within_tens_of_requests() -> None:
    rng = np.random.default_rng(11)
    test = MixtureSPRT(p0=0.01, alpha=0.01)
    needed = [_first_rejection(test, rng.random(2000) < 0.15, every=1) for _ in range(50)]
    assert all(n is not None for n in needed)
    assert float(np.median([n for n in needed if n is not None])) <= 60


def _monitor_rejection(violations: np.ndarray, *, per_s: float = 100.0) -> int | None:
    """First request count at which a staggered monitor rejects, evaluated every 0.25 s as the
    guard does (requests arriving at ``per_s``/s)."""
    monitor = StaggeredMonitor(p0=0.01, alpha=0.01, restart_s=2.0)
    k = np.cumsum(violations)
    for n in range(25, len(violations) + 1, 25):
        if monitor.update(n=n, k=int(k[n - 1]), now=n / per_s).rejected:
            return n
    return None


def test_a_single_test_is_slow_on_a_late_breach_and_the_monitor_is_not() -> None:
    rng = np.random.default_rng(3)
    good = rng.random(3000) < 0.005  # 30 s at half the allowance
    bad = rng.random(1000) < 0.15
    single = _first_rejection(MixtureSPRT(p0=0.01, alpha=0.01), np.concatenate([good, bad]))
    staggered = _monitor_rejection(np.concatenate([good, bad]))
    assert single is not None and staggered is not None
    assert staggered - len(good) <= 300  # within one restart period plus a few violations
    assert staggered < single


def test_monitor_false_rejections_stay_under_alpha() -> None:
    rng = np.random.default_rng(5)
    rejected = sum(_monitor_rejection(rng.random(3000) < 0.01) is not None for _ in range(40))
    assert rejected / 40 <= 0.05


def test_ratio_is_monotone_in_violations() -> None:
    test = MixtureSPRT(p0=0.02)
    ratios = [test.log_ratio(200, k) for k in range(0, 30)]
    assert ratios == sorted(ratios)


@pytest.mark.parametrize(("n", "k"), [(-1, 0), (5, 6), (5, -1)])
def test_impossible_counts_raise(n: int, k: int) -> None:
    with pytest.raises(ValueError):
        MixtureSPRT(p0=0.01).log_ratio(n, k)


def test_upper_bound() -> None:
    assert upper_bound(0, 0) == 1.0
    assert 0.0 < upper_bound(1000, 10) < 0.02
    assert upper_bound(1000, 10) > 10 / 1000
