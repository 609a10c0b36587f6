"""The detectors' arithmetic, on plain point lists (no store, no clock), so it is tested and
benchmarked on synthetic series directly.

QPS swing: the per-second request rate between consecutive samples of the cumulative request
counter, and its coefficient of variation (stddev / mean) over the window. A counter reset
(restart) contributes no rate point rather than a negative one.

Memory leak: memory (GPU used, or the engine process's RSS) against the engine's cumulative
request count, i.e. bytes per request, fitted with the Theil–Sen estimator (the median of
pairwise slopes: a few outliers, a GC pause or a scrape at a bad moment, do not move it).
Memory is cut into segments at every config change and every restart (the request counter
going down) and wherever it jumps by more than ``step_fraction`` of its level between two
samples (a reload nobody recorded); only the newest segment is fitted, and only once it spans
enough requests and samples (until then the verdict is "not known", and an alert already
firing stays so), so the step a switch causes is never read as growth.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import theilslopes

Points = Sequence[tuple[float, float]]
PER_REQUESTS = 100_000
# Theil–Sen looks at every pair of points: a 6 h segment at a 15 s scrape is 1,440 points and
# a million pairs. Thinned evenly to this many (endpoints kept), the fit costs about 2 ms.
MAX_FIT_POINTS = 400


@dataclass(frozen=True, slots=True)
class QpsVerdict:
    """``cv`` is None when the window has too few rate points to judge."""

    mean_rps: float
    cv: float | None
    points: int
    swinging: bool


def rates(counter: Points) -> list[float]:
    """Per-second rate between consecutive samples; resets and repeated timestamps skipped."""
    out = []
    for (t0, v0), (t1, v1) in zip(counter, counter[1:], strict=False):
        if t1 > t0 and v1 >= v0:
            out.append((v1 - v0) / (t1 - t0))
    return out


def qps_swing(counter: Points, *, threshold: float, min_rps: float, min_points: int) -> QpsVerdict:
    per_s = rates(counter)
    if len(per_s) < min_points:
        mean = float(np.mean(per_s)) if per_s else 0.0
        return QpsVerdict(mean, None, len(per_s), False)
    mean = float(np.mean(per_s))
    if mean <= 0:
        return QpsVerdict(0.0, None, len(per_s), False)
    cv = float(np.std(per_s) / mean)
    return QpsVerdict(mean, cv, len(per_s), mean >= min_rps and cv > threshold)


@dataclass(frozen=True, slots=True)
class LeakVerdict:
    """``growth`` is the relative growth per 100k requests of the fitted segment (None when no
    segment was long enough); ``requests`` is the span of requests it covers."""

    growth: float | None
    bytes_per_request: float | None
    level_bytes: float | None
    requests: float
    points: int
    segments: int
    leaking: bool


def _interpolate(counter: Points, at: Sequence[float]) -> list[float | None]:
    """The request counter at each time of ``at`` (linear between samples; None outside)."""
    times = [t for t, _ in counter]
    out: list[float | None] = []
    for t in at:
        i = bisect.bisect_left(times, t)
        if i < len(times) and times[i] == t:
            out.append(counter[i][1])
        elif 0 < i < len(times):
            (t0, v0), (t1, v1) = counter[i - 1], counter[i]
            if v1 < v0:
                out.append(None)  # a reset between the two: the request count is unknown
            else:
                out.append(v0 + (v1 - v0) * (t - t0) / (t1 - t0))
        else:
            out.append(None)
    return out


def segments(
    memory: Points, counter: Points, *, changes: Sequence[float], step_fraction: float
) -> list[list[tuple[float, float]]]:
    """(requests, bytes) points cut at config changes, restarts and memory steps."""
    requests = _interpolate(counter, [t for t, _ in memory])
    cuts = sorted(changes)
    out: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    last: tuple[float, float, float] | None = None  # time, requests, bytes
    for (t, mem), req in zip(memory, requests, strict=True):
        if req is None or not math.isfinite(mem):
            continue
        if last is not None:
            lt, lreq, lmem = last
            changed = bisect.bisect_right(cuts, lt) != bisect.bisect_right(cuts, t)
            restarted = req < lreq
            stepped = abs(mem - lmem) > step_fraction * max(lmem, 1.0)
            if changed or restarted or stepped:
                out.append(current)
                current = []
        current.append((req, mem))
        last = (t, req, mem)
    if current:
        out.append(current)
    return [s for s in out if s]


def leak(
    memory: Points,
    counter: Points,
    *,
    changes: Sequence[float] = (),
    threshold: float,
    min_requests: float,
    min_points: int,
    step_fraction: float,
) -> LeakVerdict:
    parts = segments(memory, counter, changes=changes, step_fraction=step_fraction)
    if not parts:
        return LeakVerdict(None, None, None, 0.0, 0, 0, False)
    part = parts[-1]
    span = part[-1][0] - part[0][0]
    if len(part) < min_points or span < min_requests:
        return LeakVerdict(None, None, None, float(span), len(part), len(parts), False)
    if len(part) > MAX_FIT_POINTS:
        picks = np.linspace(0, len(part) - 1, MAX_FIT_POINTS).round().astype(int)
        part = [part[i] for i in picks]
    x = np.array([p[0] for p in part])
    y = np.array([p[1] for p in part])
    slope, intercept, _low, _high = theilslopes(y, x)
    level = float(intercept + slope * x[0])
    if level <= 0:
        return LeakVerdict(None, None, None, float(span), len(part), len(parts), False)
    growth = float(slope) * PER_REQUESTS / level
    return LeakVerdict(
        growth, float(slope), level, float(span), len(part), len(parts), growth >= threshold
    )
