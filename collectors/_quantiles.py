"""Counter arithmetic and ``histogram_quantile`` exactly as Prometheus computes them.

:func:`increase` follows PromQL's reset rule: any decrease of a cumulative counter means
the process restarted and counted again from zero, so the new value is the increase since
the reset (engines restart on every tuner trial that changes flags). No extrapolation to
the window edges: stored samples are the scrapes themselves.

:func:`histogram_quantile` is a transcription of ``BucketQuantile`` in Prometheus
``promql/quantile.go``: buckets sorted by upper bound, equal bounds merged, counts forced
monotonic, linear interpolation inside the bucket holding the rank, the lowest bucket's
lower bound 0 (or its upper bound when that is <= 0), and the highest finite bound when the
rank falls in the ``+Inf`` bucket. NaN when there is no ``+Inf`` bucket, fewer than two
buckets, or no observations; -Inf / +Inf for q < 0 / q > 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from collections.abc import Sequence

Bucket = tuple[float, float]  # (upper bound, cumulative count)


def increase(values: Sequence[float]) -> float:
    """Total increase of a cumulative counter over consecutive samples, resets included."""
    total = 0.0
    for prev, cur in zip(values, values[1:], strict=False):
        total += cur - prev if cur >= prev else cur
    return total


def _coalesce(buckets: list[Bucket]) -> list[Bucket]:
    out: list[Bucket] = []
    for upper, count in buckets:
        if out and out[-1][0] == upper:
            out[-1] = (upper, out[-1][1] + count)
        else:
            out.append((upper, count))
    return out


_SMALL_DELTA = 1e-12  # promql smallDeltaTolerance
_MIN_NORMAL = 2.2250738585072014e-308


def _almost_equal(a: float, b: float, epsilon: float) -> bool:
    """``almost.Equal`` of Prometheus ``util/almost``."""
    if a == b:
        return True
    abs_sum = abs(a) + abs(b)
    diff = abs(a - b)
    if a == 0 or b == 0 or abs_sum < _MIN_NORMAL:
        return diff < epsilon * _MIN_NORMAL
    return diff / min(abs_sum, 1.7976931348623157e308) < epsilon


def _monotonic(buckets: list[Bucket]) -> list[Bucket]:
    """``ensureMonotonicAndIgnoreSmallDeltas``: float noise and decreases are flattened."""
    out = list(buckets)
    prev = out[0][1]
    for i in range(1, len(out)):
        upper, cur = out[i]
        if cur == prev:
            continue
        if _almost_equal(prev, cur, _SMALL_DELTA) or cur < prev:
            out[i] = (upper, prev)
            continue
        prev = cur
    return out


def histogram_quantile(q: float, buckets: Iterable[Bucket]) -> float:
    """The ``q`` quantile of a classic histogram given as (upper bound, cumulative count)."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(buckets, key=lambda b: b[0])
    if not ordered or not math.isinf(ordered[-1][0]) or ordered[-1][0] < 0:
        return math.nan
    ordered = _monotonic(_coalesce(ordered))
    if len(ordered) < 2:
        return math.nan
    observations = ordered[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    # sort.Search over all but the +Inf bucket: first index whose count >= rank.
    b = next((i for i in range(len(ordered) - 1) if ordered[i][1] >= rank), len(ordered) - 1)
    if b == len(ordered) - 1:
        return ordered[-2][0]
    if b == 0 and ordered[0][0] <= 0:
        return ordered[0][0]
    bucket_start = 0.0
    bucket_end, count = ordered[b]
    if b > 0:
        bucket_start = ordered[b - 1][0]
        count -= ordered[b - 1][1]
        rank -= ordered[b - 1][1]
    if count == 0:
        return math.nan  # Go: 0/0 is NaN (only reachable with q == 0 and an empty bucket)
    return bucket_start + (bucket_end - bucket_start) * (rank / count)
