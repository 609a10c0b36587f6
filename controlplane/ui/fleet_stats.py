"""What the fleet page loads after it renders: QPS and p99 sparklines, SLO status and
freshness of every visible engine, in one request and a fixed number of queries.

The numbers are computed the way ``/api/v1/series`` computes them (rates of counters and
``histogram_quantile`` over bucket increases, from :mod:`collectors._query`), so a sparkline
and the engine page's chart agree.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from collectors._query import quantile_series
from collectors._query import rate_series
from collectors._query import sum_by_le
from collectors._query import window_increase
from controlplane.domain import SLO
from controlplane.domain import Series
from controlplane.domain.alerts import AlertState
from controlplane.prometheus.slo_rules import ALERT as BURN_ALERT
from controlplane.store import alerts
from controlplane.store import fleet
from controlplane.store import samples
from controlplane.store.samples import SeriesData

SPARK_RANGE_S = 30 * 60.0
SPARK_STEP_S = 60.0
STALE_AFTER_S = 120.0


@dataclass(frozen=True)
class EngineStats:
    qps: list[tuple[float, float]]
    p99_ms: list[tuple[float, float]]
    slo_status: str  # met | burning | breached | no data | no SLO
    slo_detail: str
    health: str  # up | stale | no data
    last_sample_age_s: float | None


def _buckets(data: list[SeriesData]) -> dict[float, Sequence[tuple[float, float]]]:
    return sum_by_le([(d.labels, d.points) for d in data])


def _counter_points(data: list[SeriesData]) -> list[tuple[float, float]]:
    """The sum of a counter's series at each scrape time (all series share scrape times)."""
    acc: dict[float, float] = {}
    for d in data:
        for ts, v in d.points:
            acc[ts] = acc.get(ts, 0.0) + v
    return sorted(acc.items())


def _slo_value(
    slo: SLO,
    now: float,
    latency: dict[float, Sequence[tuple[float, float]]],
    ttft: dict[float, Sequence[tuple[float, float]]],
    ok: list[tuple[float, float]],
    failed: list[tuple[float, float]],
) -> float | None:
    if slo.kind == "error_rate":
        bad = window_increase(failed, now, slo.window_s) or 0.0
        good = window_increase(ok, now, slo.window_s) or 0.0
        return None if bad + good <= 0 else bad / (bad + good)
    buckets = latency if slo.kind == "latency" else ttft
    assert slo.quantile is not None
    points = quantile_series(
        buckets, slo.quantile, start=now - 1.0, end=now, step=1.0, window=slo.window_s
    )
    return points[-1][1] if points else None


def fleet_stats(
    session: Session, engine_ids: list[int], *, now: float | None = None
) -> dict[int, EngineStats]:
    now = time.time() if now is None else now
    names = fleet.names_of(session, engine_ids)
    sources = list(names.values())
    slos = fleet.slos_of(session, engine_ids)
    longest = max((s.window_s for ss in slos.values() for s in ss), default=0.0)
    start = now - max(SPARK_RANGE_S, longest) - SPARK_STEP_S

    def fetch(metric: str) -> dict[str, list[SeriesData]]:
        return samples.fetch_many(session, sources=sources, metric=metric, start=start, end=now)

    ok = fetch(Series.requests_succeeded.value)
    failed = fetch(Series.requests_failed.value)
    latency = fetch(f"{Series.request_latency.value}_bucket")
    ttft: dict[str, list[SeriesData]] = {}
    if any(s.kind == "ttft" for ss in slos.values() for s in ss):
        ttft = fetch(f"{Series.time_to_first_token.value}_bucket")
    burning = {
        a.engine_id
        for a in alerts.list_alerts(
            session, status=AlertState.firing, alertname=BURN_ALERT, limit=10_000
        )
    }
    out: dict[int, EngineStats] = {}
    spark_start = now - SPARK_RANGE_S
    for engine_id, name in names.items():
        ok_points = _counter_points(ok.get(name, []))
        failed_points = _counter_points(failed.get(name, []))
        lat = _buckets(latency.get(name, []))
        qps = rate_series(
            ok_points, start=spark_start, end=now, step=SPARK_STEP_S, window=SPARK_STEP_S
        )
        p99 = quantile_series(
            lat, 0.99, start=spark_start, end=now, step=SPARK_STEP_S, window=SPARK_STEP_S
        )
        last = max((p[-1][0] for p in (ok_points,) if p), default=None)
        age = None if last is None else max(0.0, now - last)
        health = "no data" if age is None else ("up" if age <= STALE_AFTER_S else "stale")
        status, detail = "no SLO", ""
        engine_slos = slos.get(engine_id, [])
        if engine_slos:
            ttft_b = _buckets(ttft.get(name, []))
            parts, breached, known = [], False, False
            for slo in engine_slos:
                value = _slo_value(slo, now, lat, ttft_b, ok_points, failed_points)
                if value is None:
                    parts.append(f"{slo.spec()}: no data")
                    continue
                known = True
                over = value > slo.threshold
                breached |= over
                shown = f"{value:.2%}" if slo.kind == "error_rate" else f"{value * 1000:.0f} ms"
                parts.append(f"{slo.spec()}: {shown}{' (over)' if over else ''}")
            detail = "; ".join(parts)
            if breached:
                status = "breached"
            elif engine_id in burning:
                status = "burning"
            else:
                status = "met" if known else "no data"
        out[engine_id] = EngineStats(
            qps=qps,
            p99_ms=[(t, v * 1000.0) for t, v in p99],
            slo_status=status,
            slo_detail=detail,
            health=health,
            last_sample_age_s=age,
        )
    return out
