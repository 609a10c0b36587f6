"""One step of a sweep: the load generator at one concurrency or rate, warmed up, then
windows until the tuner's stability rule accepts them (:func:`tuner.measure_until_stable`).

The step's figures are computed over every request of the accepted windows together, not
averaged per window, so a p99 is the p99 of all those requests. The windows' spread is
kept too: it is the run-to-run noise the regression gate allows for.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import statistics
import threading
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import asdict
from dataclasses import dataclass
from typing import Any

from controlplane.domain import SLO
from controlplane.settings import TunerSettings
from tuner._measure import goodput_threshold
from tuner._measure import measure_until_stable
from tuner._measure import window_of
from tuner.loadgen import LoadResult
from tuner.loadgen import LoadSpec
from tuner.loadgen import RequestRecord
from tuner.loadgen import percentile
from tuner.loadgen import run_load

SpecFor = Callable[[float, int], LoadSpec]
"""The load of this step for ``(duration_s, seed)``."""


@dataclass(frozen=True)
class StepFigures:
    """What the engine did under one offered load (latencies in milliseconds)."""

    index: int
    offered: float
    throughput_rps: float
    output_tokens_per_s: float
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    ttft_p50_ms: float | None
    ttft_p99_ms: float | None
    tpot_ms: float | None
    requests: int
    errors: int
    rejected: int
    error_rate: float
    meets_slo: bool
    stable: bool
    windows: int
    throughput_noise: float
    """Coefficient of variation of the accepted windows' throughput."""
    p99_noise: float
    duration_s: float

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of_row(cls, row: Any) -> StepFigures:
        """From a stored step (any object with the same attributes)."""
        return cls(**{name: getattr(row, name) for name in cls.__dataclass_fields__})


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def _cv(values: Sequence[float | None]) -> float:
    known = [v for v in values if v is not None]
    if len(known) < 2:
        return 0.0
    mean = statistics.fmean(known)
    return statistics.stdev(known) / mean if mean > 0 else 0.0


def meets(records: Sequence[RequestRecord], slos: Sequence[SLO]) -> bool:
    """Every SLO holds over these requests (a latency SLO with no answer does not)."""
    sent = len(records)
    ok = [r for r in records if r.status == "ok"]
    for slo in slos:
        if slo.kind == "error_rate":
            if sent and (sent - len(ok)) / sent > slo.threshold:
                return False
            continue
        assert slo.quantile is not None
        if slo.kind == "latency":
            values = [r.latency_s for r in ok]
        else:
            values = [r.ttft_s for r in ok if r.ttft_s is not None]
        observed = percentile(values, slo.quantile * 100)
        if observed is None or observed > slo.threshold:
            return False
    return True


def figures(
    index: int,
    offered: float,
    results: Sequence[LoadResult],
    slos: Sequence[SLO],
    *,
    stable: bool,
) -> StepFigures:
    records = [r for result in results for r in result.records]
    wall = sum(r.wall_s for r in results)
    ok = [r for r in records if r.status == "ok"]
    latencies = [r.latency_s for r in ok]
    ttfts = [r.ttft_s for r in ok if r.ttft_s is not None]
    tpots = [t for result in results for t in result.time_per_output_token]
    tokens = sum(r.completion_tokens for r in ok)
    failed = sum(1 for r in records if r.status == "failed")
    rejected = sum(1 for r in records if r.status == "rejected")
    sent = len(records)
    return StepFigures(
        index=index,
        offered=offered,
        throughput_rps=round(len(ok) / wall, 4) if wall > 0 else 0.0,
        output_tokens_per_s=round(tokens / wall, 4) if wall > 0 else 0.0,
        p50_ms=_ms(percentile(latencies, 50)),
        p90_ms=_ms(percentile(latencies, 90)),
        p99_ms=_ms(percentile(latencies, 99)),
        ttft_p50_ms=_ms(percentile(ttfts, 50)),
        ttft_p99_ms=_ms(percentile(ttfts, 99)),
        tpot_ms=_ms(percentile(tpots, 50)),
        requests=sent,
        errors=failed,
        rejected=rejected,
        error_rate=round((failed + rejected) / sent, 6) if sent else 0.0,
        meets_slo=meets(records, slos),
        stable=stable,
        windows=len(results),
        throughput_noise=round(_cv([r.achieved_rps for r in results]), 6),
        p99_noise=round(_cv([r.p99 for r in results]), 6),
        duration_s=round(wall, 3),
    )


def measure_step(
    index: int,
    offered: float,
    spec_for: SpecFor,
    *,
    slos: Sequence[SLO],
    policy: TunerSettings,
    stop: threading.Event | None = None,
) -> StepFigures:
    """Warm-up (discarded), windows until stable, the figures of the accepted windows."""
    seeds = itertools.count(index * 1000)
    results: list[LoadResult] = []
    threshold = goodput_threshold(slos)

    def run(duration_s: float) -> LoadResult:
        return asyncio.run(run_load(spec_for(duration_s, next(seeds))))

    def window(duration_s: float) -> Any:
        result = run(duration_s)
        results.append(result)
        return window_of(result, slos, goodput_slo_s=threshold)

    m = measure_until_stable(window, policy=policy, stop=stop, warmup=run)
    accepted = results[-m.used :] if m.used else results
    return figures(index, offered, accepted, slos, stable=m.stable)


def bad_step(
    step: StepFigures, slos: Sequence[SLO], *, error_rate: float, p99_factor: float
) -> str | None:
    """Why the sweep should stop after ``step`` (failing badly), or None."""
    if step.requests and step.error_rate >= error_rate:
        return (
            f"step {step.index} ({step.offered:g}): {step.error_rate:.0%} of requests failed "
            f"or were rejected (stop at {error_rate:.0%})"
        )
    latency = [s.threshold for s in slos if s.kind == "latency"]
    if latency and step.p99_ms is not None:
        limit_ms = min(latency) * 1000.0 * p99_factor
        if step.p99_ms > limit_ms:
            return (
                f"step {step.index} ({step.offered:g}): p99 {step.p99_ms:.0f} ms is past "
                f"{p99_factor:g}x the SLO ({limit_ms:.0f} ms)"
            )
    if step.requests and step.throughput_rps == 0 and not math.isnan(step.error_rate):
        return f"step {step.index} ({step.offered:g}): no request succeeded"
    return None
