"""From scrapes to the counts an SLO is judged on: by the guard while a change bakes, by the
tuner in a trial's windows, by chaos experiments afterwards. One rule for all three, so an
SLO means the same thing wherever it is evaluated.

A :class:`Snapshot` sums one scrape's canonical samples over every label but ``le`` (all
models, all finish reasons). The difference of two snapshots is what happened between them;
an engine restart shows up as counters going down, and then the later value is itself the
increase (PromQL's reset rule). :func:`violations` turns a window into "n requests, k of
them violating the SLO": for latency, k counts requests above the smallest bucket bound at
or over the threshold, so an SLO between bounds is judged a little leniently, never harshly,
and the bound actually used is reported with every decision.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import TypeVar

from controlplane.domain.engines import Series
from controlplane.domain.samples import Sample
from controlplane.domain.slo import SLO

_BUCKET = "_bucket"
_CUMULATIVE = ("_total", "_count", "_sum")
K = TypeVar("K", str, float)


@dataclass(frozen=True)
class Snapshot:
    ts: float
    buckets: dict[str, dict[float, float]] = field(default_factory=dict)  # series -> le -> n
    values: dict[str, float] = field(default_factory=dict)  # cumulative series -> value

    @classmethod
    def of(cls, samples: Iterable[Sample], *, ts: float) -> Snapshot:
        buckets: dict[str, dict[float, float]] = {}
        values: dict[str, float] = {}
        for s in samples:
            if s.metric.endswith(_BUCKET):
                le = s.label("le")
                if le is None:
                    continue
                per_le = buckets.setdefault(s.metric[: -len(_BUCKET)], {})
                bound = float(le)
                per_le[bound] = per_le.get(bound, 0.0) + s.value
            elif s.metric.endswith(_CUMULATIVE):
                # Gauges (requests running, waiting) go down all the time; only cumulative
                # series have a "since" and a reset rule.
                values[s.metric] = values.get(s.metric, 0.0) + s.value
        return cls(ts=ts, buckets=buckets, values=values)

    def since(self, earlier: Snapshot) -> Snapshot:
        """What happened between ``earlier`` and this snapshot, counter resets included."""
        buckets = {
            name: _diff(per_le, earlier.buckets.get(name, {}))
            for name, per_le in self.buckets.items()
        }
        values = {
            name: _diff({name: value}, {name: earlier.values.get(name, 0.0)})[name]
            for name, value in self.values.items()
        }
        return Snapshot(ts=self.ts, buckets=buckets, values=values)


def increase(snapshots: Sequence[Snapshot]) -> Snapshot:
    """What happened from the first to the last of ``snapshots`` (consecutive, in order),
    summing pairwise increases, so a restart in the middle loses nothing after it."""
    buckets: dict[str, dict[float, float]] = {}
    values: dict[str, float] = {}
    for earlier, later in zip(snapshots, snapshots[1:], strict=False):
        step = later.since(earlier)
        for name, per_le in step.buckets.items():
            acc = buckets.setdefault(name, {})
            for le, v in per_le.items():
                acc[le] = acc.get(le, 0.0) + v
        for name, value in step.values.items():
            values[name] = values.get(name, 0.0) + value
    return Snapshot(ts=snapshots[-1].ts if snapshots else 0.0, buckets=buckets, values=values)


def _diff(now: dict[K, float], before: dict[K, float]) -> dict[K, float]:
    # A reset anywhere in one family (one counter, or one histogram's buckets) means the
    # process restarted: take the family's new values whole.
    reset = any(value < before.get(key, 0.0) for key, value in now.items())
    return {key: value if reset else value - before.get(key, 0.0) for key, value in now.items()}


@dataclass(frozen=True)
class Window:
    """Requests finished in a window and how many violated the SLO."""

    n: int
    k: int
    bound: float | None  # the bucket bound used for a latency SLO

    @property
    def rate(self) -> float | None:
        return None if self.n == 0 else self.k / self.n


def violations(window: Snapshot, slo: SLO) -> Window:
    if slo.kind == "error_rate":
        failed = window.values.get(Series.requests_failed.value, 0.0)
        ok = window.values.get(Series.requests_succeeded.value, 0.0)
        return Window(n=round(failed + ok), k=round(failed), bound=None)
    per_le = window.buckets.get(slo.series.value, {})
    total = per_le.get(math.inf)
    if total is None:
        return Window(n=0, k=0, bound=None)
    bound = usable_bound(per_le.keys(), slo.threshold)
    within = per_le[bound] if bound is not None else total
    return Window(n=round(total), k=max(0, round(total - within)), bound=bound)


def usable_bound(bounds: Iterable[float], threshold: float) -> float | None:
    """The smallest finite bucket bound >= ``threshold``; ``None`` when there is none (the
    histogram cannot tell a violation, which the guard reports before the bake starts)."""
    candidates = [b for b in bounds if math.isfinite(b) and b >= threshold * (1 - 1e-9)]
    return min(candidates) if candidates else None
