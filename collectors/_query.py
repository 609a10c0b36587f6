"""Series arithmetic for queries: per-step rates of counters and quantiles of histograms.

Both work on the raw cumulative points the store returns and evaluate at each step's end
``t`` over the window ``(t - window, t]``, like PromQL's ``increase`` / ``rate`` and
``histogram_quantile(q, sum by (le) (increase(x_bucket[window])))``; counter resets inside
a window are handled by :func:`collectors._quantiles.increase`.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

from collectors._quantiles import histogram_quantile
from collectors._quantiles import increase

Points = Sequence[tuple[float, float]]


def _window(points: Points, times: list[float], lo: float, hi: float) -> list[float]:
    """Values with ts in ``[lo, hi]``: the sample at ``lo`` is the window's baseline."""
    i = bisect.bisect_left(times, lo)
    j = bisect.bisect_right(times, hi)
    return [v for _, v in points[i:j]]


def step_times(start: float, end: float, step: float) -> list[float]:
    n = int(math.floor((end - start) / step + 1e-9))
    return [start + k * step for k in range(1, n + 1)]


def window_increase(points: Points, t: float, window: float) -> float | None:
    """Increase of a counter over ``[t - window, t]``; ``None`` with fewer than 2 points."""
    times = [p[0] for p in points]
    values = _window(points, times, t - window, t)
    return increase(values) if len(values) >= 2 else None


def rate_series(
    points: Points, *, start: float, end: float, step: float, window: float
) -> list[tuple[float, float]]:
    """Per-second rate at each step end, from the increase between the first and last
    sample of the window divided by the time they span (no edge extrapolation)."""
    times = [p[0] for p in points]
    out: list[tuple[float, float]] = []
    for t in step_times(start, end, step):
        i = bisect.bisect_left(times, t - window)
        j = bisect.bisect_right(times, t)
        if j - i < 2:
            continue
        span = times[j - 1] - times[i]
        if span <= 0:
            continue
        out.append((t, increase([v for _, v in points[i:j]]) / span))
    return out


def quantile_series(
    buckets: dict[float, Points],
    q: float,
    *,
    start: float,
    end: float,
    step: float,
    window: float,
) -> list[tuple[float, float]]:
    """``histogram_quantile(q, increase(bucket[window]))`` at each step end.

    ``buckets`` maps each upper bound (``le``, +Inf included) to the cumulative points of
    that bucket, already summed over the series being aggregated. Steps with no
    observations in the window (NaN) are left out.
    """
    indexed = {le: ([p[0] for p in pts], pts) for le, pts in buckets.items()}
    out: list[tuple[float, float]] = []
    for t in step_times(start, end, step):
        counts: list[tuple[float, float]] = []
        for le, (times, pts) in indexed.items():
            values = _window(pts, times, t - window, t)
            if len(values) >= 2:
                counts.append((le, increase(values)))
        value = histogram_quantile(q, counts)
        if math.isfinite(value):
            out.append((t, value))
    return out


def sum_by_le(series: Sequence[tuple[dict[str, str], Points]]) -> dict[float, Points]:
    """Sum ``_bucket`` series over every label but ``le``, aligned on scrape timestamps
    (all buckets of one scrape share its timestamp)."""
    acc: dict[float, dict[float, float]] = {}
    for labels, points in series:
        le_text = labels.get("le")
        if le_text is None:
            continue
        le = float(le_text)
        target = acc.setdefault(le, {})
        for ts, v in points:
            target[ts] = target.get(ts, 0.0) + v
    return {le: sorted(pts.items()) for le, pts in acc.items()}
