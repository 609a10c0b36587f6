"""Canonical recording rules: every engine kind's own series under one set of names.

The shipped alerts (``alerts/*.rules.yml``) are written once against these names, not once
per engine kind. The rules are generated from the metric maps the collectors use
(:mod:`controlplane.engines.metric_maps`), so a name that moves in an engine release moves
in one table; ``alerts/canonical.rules.yml`` is this module's output, and a test fails when
the committed file is stale (regenerate with ``python -m controlplane.prometheus >
alerts/canonical.rules.yml``).

Sources of one series are summed after ``rate``; each gets a ``cplane_source`` label first,
because ``or`` between two rates whose label sets coincide once the metric name is gone
would drop one of them. Histograms whose unit is not seconds (Triton's millisecond
first-response histogram) are left out: their ``le`` bounds cannot be rescaled in PromQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from controlplane.domain import MetricMap
from controlplane.domain import MetricSource
from controlplane.domain import Series
from controlplane.engines.metric_maps import METRIC_MAPS
from controlplane.prometheus.promql import selector
from controlplane.prometheus.yaml_out import dump_rules

GROUP = "cplane-canonical"
BY = "engine, kind"


@dataclass(frozen=True)
class KindGroup:
    kinds: tuple[str, ...]
    metric_map: MetricMap


def kind_groups() -> list[KindGroup]:
    """Kinds that share one metric map (Triton and TensorRT-LLM) share one selector."""
    groups: list[KindGroup] = []
    for kind, metric_map in METRIC_MAPS.items():
        for i, group in enumerate(groups):
            if group.metric_map is metric_map:
                groups[i] = KindGroup((*group.kinds, kind), metric_map)
                break
        else:
            groups.append(KindGroup((kind,), metric_map))
    return groups


def sources_of(group: KindGroup, series: Sequence[Series]) -> list[MetricSource]:
    found: list[MetricSource] = []
    for s in series:
        for src in group.metric_map.get(s, ()):
            if src not in found:
                found.append(src)
    return found


def sum_of(
    group: KindGroup,
    sources: Sequence[MetricSource],
    *,
    fn: str,
    window: str,
    part: str = "",
    by: str | None = BY,
    engine: str | None = None,
) -> str:
    """``sum by (...)`` of ``fn(source[window])`` over the sources; for one engine (by name,
    with no ``kind`` matcher) when ``engine`` is given, else for the group's kinds."""
    kind = group.kinds[0]
    extra = {"engine": engine} if engine is not None else None
    kinds = () if engine is not None else group.kinds
    terms = [
        f"{fn}({selector(kind, src, part=part, extra=extra, kinds=kinds)}[{window}])"
        for src in sources
    ]
    if len(terms) > 1:
        terms = [
            f'label_replace({t}, "cplane_source", "{i}", "", "")' for i, t in enumerate(terms)
        ]
    head = "sum" if by is None else f"sum by ({by})"
    return f"{head} ({' or '.join(terms)})"


def _counter_rule(record: str, series: Sequence[Series], fn: str, window: str) -> dict[str, str]:
    parts = []
    for group in kind_groups():
        sources = [s for s in sources_of(group, series) if s.type == "counter"]
        if sources:
            parts.append(sum_of(group, sources, fn=fn, window=window))
    return {"record": record, "expr": "\nor\n".join(parts)}


def _bucket_rule(record: str, series: Series, window: str) -> dict[str, str]:
    parts = []
    for group in kind_groups():
        sources = [
            s for s in sources_of(group, [series]) if s.type == "histogram" and s.scale == 1.0
        ]
        if sources:
            parts.append(
                sum_of(group, sources, fn="rate", window=window, part="_bucket", by=f"{BY}, le")
            )
    return {"record": record, "expr": "\nor\n".join(parts)}


def _gauge_rule(record: str, series: Series, agg: str) -> dict[str, str]:
    parts = []
    for group in kind_groups():
        for src in sources_of(group, [series]):
            if src.type == "gauge":
                parts.append(
                    f"{agg} by ({BY}) ({selector(group.kinds[0], src, kinds=group.kinds)})"
                )
    return {"record": record, "expr": "\nor\n".join(parts)}


FINISHED = (Series.requests_succeeded, Series.requests_failed)
FAILED = (Series.requests_failed,)


def _quantiles(series: str) -> list[dict[str, str]]:
    return [
        {
            "record": f"cplane:{series}:p{round(float(q) * 100)}_5m",
            "expr": f"histogram_quantile({q}, cplane:{series}_bucket:rate5m)",
        }
        for q in ("0.5", "0.99")
    ]


def canonical_rules() -> dict[str, object]:
    """Three groups: Prometheus evaluates groups concurrently and the rules of one group in
    order, so the two histograms (most of the cost) each get a group, with their quantiles
    after their buckets."""
    requests: list[dict[str, str]] = [
        _counter_rule("cplane:engine_requests:rate1m", FINISHED, "rate", "1m"),
        _counter_rule("cplane:engine_requests:rate5m", FINISHED, "rate", "5m"),
        _counter_rule("cplane:engine_requests:rate30m", FINISHED, "rate", "30m"),
        _counter_rule("cplane:engine_request_errors:rate5m", FAILED, "rate", "5m"),
        _counter_rule("cplane:engine_request_errors:increase2m", FAILED, "increase", "2m"),
        {
            "record": "cplane:engine_request_errors:ratio_rate5m",
            "expr": "cplane:engine_request_errors:rate5m\n/ (cplane:engine_requests:rate5m > 0)",
        },
        _gauge_rule("cplane:engine_requests_waiting:sum", Series.requests_waiting, "sum"),
        _gauge_rule("cplane:engine_kv_cache_usage:ratio", Series.kv_cache_usage, "max"),
    ]
    latency = [
        _bucket_rule(
            "cplane:engine_request_latency_seconds_bucket:rate5m", Series.request_latency, "5m"
        ),
        *_quantiles("engine_request_latency_seconds"),
    ]
    ttft = [
        _bucket_rule("cplane:engine_ttft_seconds_bucket:rate5m", Series.time_to_first_token, "5m"),
        *_quantiles("engine_ttft_seconds"),
    ]
    return {
        "groups": [
            {"name": f"{GROUP}-requests", "rules": requests},
            {"name": f"{GROUP}-latency", "rules": latency},
            {"name": f"{GROUP}-ttft", "rules": ttft},
        ]
    }


HEADER = (
    "# Generated by `python -m controlplane.prometheus`; do not edit.\n"
    "# Every engine kind's own series under the control plane's canonical names.\n"
)


def canonical_text() -> str:
    return HEADER + dump_rules(canonical_rules())
