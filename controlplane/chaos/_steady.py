"""What a fault cost the engine: failed requests and seconds of SLO violation, from the
samples the collectors stored while it was on.

The rule is the one the guard and the tuner judge SLOs by (:mod:`controlplane.domain.windows`):
a scrape summed over every label but ``le``, windows as increases between scrapes with the
counter-reset rule, a latency SLO counted against the smallest bucket bound at or over its
threshold; an SLO is violated when the violating share exceeds what it allows (``1 - q`` for
a quantile).

At each scrape inside the experiment, every SLO is evaluated over its own trailing window
(``SLO.window_s``, the operator's definition of the objective); the time since the previous
scrape counts as "in violation" when any SLO was violated at that scrape. Time after the
last stored scrape is not counted; ``evaluated_s`` says how much was covered.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence
from typing import Any

from controlplane.domain import SLO
from controlplane.domain import Sample
from controlplane.domain import Series
from controlplane.domain.windows import Snapshot
from controlplane.domain.windows import increase
from controlplane.domain.windows import violations

#: The stored sample names the evaluation reads.
METRICS = (
    f"{Series.request_latency.value}_bucket",
    f"{Series.time_to_first_token.value}_bucket",
    Series.requests_failed.value,
    Series.requests_succeeded.value,
)


def scrapes_of(samples: Iterable[Sample]) -> list[Snapshot]:
    """Group stored samples by scrape (every sample of one scrape carries its timestamp)."""
    by_ts: dict[float, list[Sample]] = {}
    for s in samples:
        by_ts.setdefault(s.ts, []).append(s)
    return [Snapshot.of(by_ts[ts], ts=ts) for ts in sorted(by_ts)]


def _violated(window: Snapshot, slo: SLO) -> bool:
    counted = violations(window, slo)
    return counted.n > 0 and counted.k / counted.n > slo.allowed_violation_rate + 1e-12


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
    whole = increase(span)
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
            if _violated(increase(window), slo):
                per_slo[slo.spec()] += interval
                any_violated = True
        if any_violated:
            violated_s += interval
    out["evaluated_s"] = round(evaluated, 3)
    out["slo_violation_s"] = round(violated_s, 3) if slos else None
    for slo in slos:
        counted = violations(whole, slo)
        out["slos"].append(
            {
                "slo": slo.spec(),
                "window_s": slo.window_s,
                "violation_s": round(per_slo[slo.spec()], 3),
                "requests": counted.n,
                "violating": counted.k,
                "bound_s": counted.bound,
            }
        )
    if not slos:
        out["note"] = "the engine has no SLO and the experiment no hypothesis"
    return out
