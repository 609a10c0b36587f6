"""What a fault cost the engine: failed requests and seconds of SLO violation, from the
samples the collectors stored while it was on.

The rule is the guard's (``controlplane.guard.windows``): a scrape is summed over every
label but ``le``; a window is the difference of two scrapes with the counter-reset rule; a
latency SLO counts requests above the smallest bucket bound at or over its threshold, so a
threshold between bounds is judged leniently; an SLO is violated when the violating share
exceeds what the SLO allows (``1 - q`` for a quantile). Chaos sits below the guard in the
layering, so the few lines are kept here, and a test checks both give the same counts.

At each scrape inside the experiment, every SLO is evaluated over its own trailing window
(``SLO.window_s``, the operator's definition of the objective); the time since the previous
scrape counts as "in violation" when any SLO was violated at that scrape. Time after the
last stored scrape is not counted; ``evaluated_s`` says how much was covered.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from controlplane.domain import SLO
from controlplane.domain import Sample
from controlplane.domain import Series

_BUCKET = "_bucket"
#: The stored sample names the evaluation reads.
METRICS = (
    f"{Series.request_latency.value}{_BUCKET}",
    f"{Series.time_to_first_token.value}{_BUCKET}",
    Series.requests_failed.value,
    Series.requests_succeeded.value,
)


@dataclass(frozen=True)
class Scrape:
    """One scrape summed over every label but ``le``."""

    ts: float
    buckets: dict[str, dict[float, float]] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)


def scrapes_of(samples: Iterable[Sample]) -> list[Scrape]:
    """Group stored samples by scrape (every sample of one scrape carries its timestamp)."""
    by_ts: dict[float, Scrape] = {}
    for s in samples:
        scrape = by_ts.setdefault(s.ts, Scrape(ts=s.ts))
        if s.metric.endswith(_BUCKET):
            le = s.label("le")
            if le is None:
                continue
            per_le = scrape.buckets.setdefault(s.metric[: -len(_BUCKET)], {})
            per_le[float(le)] = per_le.get(float(le), 0.0) + s.value
        else:
            scrape.values[s.metric] = scrape.values.get(s.metric, 0.0) + s.value
    return [by_ts[ts] for ts in sorted(by_ts)]


def _increase(now: dict[Any, float], before: dict[Any, float]) -> dict[Any, float]:
    # A reset anywhere in one family means the process restarted: its new values are the
    # increase (PromQL's rule, as the guard applies it).
    reset = any(v < before.get(k, 0.0) for k, v in now.items())
    return {k: v if reset else v - before.get(k, 0.0) for k, v in now.items()}


def between(scrapes: Sequence[Scrape]) -> Scrape:
    """What happened from the first to the last of ``scrapes`` (consecutive, in order),
    summing pairwise increases so a restart in the middle loses nothing after it."""
    buckets: dict[str, dict[float, float]] = {}
    values: dict[str, float] = {}
    for earlier, later in zip(scrapes, scrapes[1:], strict=False):
        for name, per_le in later.buckets.items():
            inc = _increase(per_le, earlier.buckets.get(name, {}))
            acc = buckets.setdefault(name, {})
            for le, v in inc.items():
                acc[le] = acc.get(le, 0.0) + v
        for name, value in later.values.items():
            inc = _increase({name: value}, {name: earlier.values.get(name, 0.0)})
            values[name] = values.get(name, 0.0) + inc[name]
    return Scrape(ts=scrapes[-1].ts if scrapes else 0.0, buckets=buckets, values=values)


def violations(window: Scrape, slo: SLO) -> tuple[int, int, float | None]:
    """(requests, violating requests, bucket bound used) in a window, as the guard counts."""
    if slo.kind == "error_rate":
        failed = window.values.get(Series.requests_failed.value, 0.0)
        ok = window.values.get(Series.requests_succeeded.value, 0.0)
        return round(failed + ok), round(failed), None
    per_le = window.buckets.get(slo.series.value, {})
    total = per_le.get(math.inf)
    if total is None:
        return 0, 0, None
    bounds = [b for b in per_le if math.isfinite(b) and b >= slo.threshold * (1 - 1e-9)]
    bound = min(bounds) if bounds else None
    within = per_le[bound] if bound is not None else total
    return round(total), max(0, round(total - within)), bound


def _violated(window: Scrape, slo: SLO) -> bool:
    n, k, _ = violations(window, slo)
    return n > 0 and k / n > slo.allowed_violation_rate + 1e-12


def evaluate(
    samples: Iterable[Sample], slos: Sequence[SLO], *, start: float, end: float
) -> dict[str, Any]:
    """Failed requests over ``[start, end]`` and the seconds any SLO was violated.

    ``samples`` should reach back ``max(window_s)`` before ``start`` so the first scrapes
    of the experiment are judged over full windows. Counts are ``None`` (with a ``note``)
    when fewer than two scrapes bracket the experiment: nothing was measured.
    """
    scrapes = scrapes_of(samples)
    before = [s for s in scrapes if s.ts <= start]
    inside = [s for s in scrapes if start < s.ts <= end]
    out: dict[str, Any] = {
        "scrapes": len(inside),
        "evaluated_s": 0.0,
        "failed_requests": None,
        "requests": None,
        "slo_violation_s": None,
        "slos": [],
    }
    span = ([before[-1]] if before else []) + inside
    if len(span) < 2:
        out["note"] = "fewer than two stored scrapes of the engine during the experiment"
        return out
    whole = between(span)
    failed = whole.values.get(Series.requests_failed.value)
    ok = whole.values.get(Series.requests_succeeded.value)
    out["failed_requests"] = round(failed) if failed is not None else None
    out["requests"] = round(failed or 0.0) + round(ok or 0.0) if ok is not None else None
    violated_s = 0.0
    evaluated = 0.0
    per_slo = {slo.spec(): 0.0 for slo in slos}
    for i, scrape in enumerate(span[1:], start=1):
        interval = scrape.ts - max(span[i - 1].ts, start)
        evaluated += interval
        any_violated = False
        for slo in slos:
            # The window reaches back to the last scrape at or before its start, so sparse
            # scrapes (a hung engine, a loaded collector) still give every scrape a baseline.
            lo = scrape.ts - slo.window_s
            base = [s for s in scrapes if s.ts <= lo + 1e-9][-1:]
            window = base + [s for s in scrapes if lo + 1e-9 < s.ts <= scrape.ts]
            if len(window) < 2:
                continue
            if _violated(between(window), slo):
                per_slo[slo.spec()] += interval
                any_violated = True
        if any_violated:
            violated_s += interval
    out["evaluated_s"] = round(evaluated, 3)
    out["slo_violation_s"] = round(violated_s, 3) if slos else None
    for slo in slos:
        n, k, bound = violations(whole, slo)
        out["slos"].append(
            {
                "slo": slo.spec(),
                "window_s": slo.window_s,
                "violation_s": round(per_slo[slo.spec()], 3),
                "requests": n,
                "violating": k,
                "bound_s": bound,
            }
        )
    if not slos:
        out["note"] = "the engine has no SLO and the experiment no hypothesis"
    return out
