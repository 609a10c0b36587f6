"""Multi-window, multi-burn-rate alerts generated from the engines' SLOs.

Every SLO is a violation rate (``p99 <= 300 ms``: at most 1 % of requests slower than
300 ms; ``error_rate <= 1 %``: at most 1 % failed), so its error budget B is that rate and
the burn rate of a window is the window's bad-event ratio over B. As in the SRE workbook,
an alert fires when both a long and a short window burn fast: page at 14.4x over 1 h and
5 m or 6x over 6 h and 30 m (2 % or 5 % of a 30-day budget spent), ticket at 3x over 1 d
and 2 h or 1x over 3 d and 6 h. The short window makes the alert stop soon after the burn
stops.

The bad-event ratios are recorded per window from the engine's own series (the metric map
of its kind): failed over finished requests, or the requests above the latency threshold,
counted with the histogram bucket at the threshold. An SLO that cannot be written so
raises :class:`ValidationError`: a kind with no such histogram (Triton's latency is a
counter of microseconds), or a threshold outside the buckets the engine exposes (when the
store has seen them). A threshold between two bounds is counted at the bound below it,
which can only make the alert fire earlier.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass

from controlplane.domain import SLO
from controlplane.domain import MetricSource
from controlplane.domain import Series
from controlplane.domain import ValidationError
from controlplane.engines.metric_maps import METRIC_MAPS
from controlplane.prometheus.canonical import FAILED
from controlplane.prometheus.canonical import FINISHED
from controlplane.prometheus.canonical import KindGroup
from controlplane.prometheus.canonical import sources_of
from controlplane.prometheus.canonical import sum_of
from controlplane.prometheus.promql import le_regex
from controlplane.prometheus.promql import selector
from controlplane.prometheus.yaml_out import dump_rules

WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
ALERT = "EngineErrorBudgetBurn"
RUNBOOK = f"docs/runbooks/{ALERT}.md"


@dataclass(frozen=True)
class BurnWindow:
    severity: str  # critical pages, warning is a ticket
    long: str
    short: str
    factor: float


PAGE = (BurnWindow("critical", "1h", "5m", 14.4), BurnWindow("critical", "6h", "30m", 6.0))
TICKET = (BurnWindow("warning", "1d", "2h", 3.0), BurnWindow("warning", "3d", "6h", 1.0))


@dataclass(frozen=True)
class SloTarget:
    """One SLO of one engine, with the bucket bounds (seconds) the store has seen for the
    histogram the SLO counts with; ``None``: nothing scraped yet, the threshold is used as
    it is."""

    engine: str
    kind: str
    slo: SLO
    buckets: tuple[float, ...] | None = None


def record_name(window: str) -> str:
    return f"cplane_slo:sli_error:ratio_rate{window}"


def _num(value: float) -> str:
    return f"{value:.6g}"


def _histogram(target: SloTarget) -> MetricSource:
    series = target.slo.series
    group = KindGroup((target.kind,), METRIC_MAPS[target.kind])
    for src in sources_of(group, [series]):
        if src.type == "histogram":
            return src
    what = "time to first token" if series is Series.time_to_first_token else "request latency"
    raise ValidationError(
        f"engine {target.engine!r} ({target.kind}) exposes no {what} histogram: "
        f"{target.slo.spec()} cannot be turned into burn-rate rules",
        field="slo",
    )


def bucket_bound(target: SloTarget) -> float:
    """The bucket bound (seconds) that counts the SLO's good requests.

    Raises:
        ValidationError: the threshold lies outside the engine's finite buckets.
    """
    threshold = target.slo.threshold
    finite = sorted(b for b in target.buckets or () if math.isfinite(b))
    if not finite:
        return threshold
    ms = f"{_num(threshold * 1000)} ms"
    if threshold > finite[-1] * (1 + 1e-9):
        raise ValidationError(
            f"{target.slo.spec()}: {ms} is beyond the largest bucket of engine "
            f"{target.engine!r} ({_num(finite[-1] * 1000)} ms); requests slower than the "
            "threshold cannot be counted",
            field="slo",
        )
    below = [b for b in finite if b <= threshold * (1 + 1e-9)]
    if not below:
        raise ValidationError(
            f"{target.slo.spec()}: {ms} is below the smallest bucket of engine "
            f"{target.engine!r} ({_num(finite[0] * 1000)} ms)",
            field="slo",
        )
    return below[-1]


def check_expressible(target: SloTarget) -> None:
    """Raise :class:`ValidationError` when the SLO cannot become burn-rate rules."""
    if target.kind not in METRIC_MAPS:
        raise ValidationError(f"no metric map for engine kind {target.kind!r}", field="kind")
    if target.slo.kind == "error_rate":
        if not _counter_sources(target, FAILED):
            raise ValidationError(
                f"engine {target.engine!r} ({target.kind}) counts no failed requests",
                field="slo",
            )
        return
    _histogram(target)
    bucket_bound(target)


def _counter_sources(target: SloTarget, series: Sequence[Series]) -> list[MetricSource]:
    group = KindGroup((target.kind,), METRIC_MAPS[target.kind])
    return [s for s in sources_of(group, series) if s.type == "counter"]


def error_ratio_expr(target: SloTarget, window: str) -> str:
    """PromQL for the share of bad events of the SLO over ``window``."""
    group = KindGroup((target.kind,), METRIC_MAPS[target.kind])
    if target.slo.kind == "error_rate":
        bad = sum_of(
            group,
            _counter_sources(target, FAILED),
            fn="rate",
            window=window,
            by=None,
            engine=target.engine,
        )
        total = sum_of(
            group,
            _counter_sources(target, FINISHED),
            fn="rate",
            window=window,
            by=None,
            engine=target.engine,
        )
        return f"{bad}\n/\n{total}"
    src = _histogram(target)
    bound = bucket_bound(target) / src.scale
    engine = {"engine": target.engine}
    good = selector(
        target.kind, src, part="_bucket", extra={**engine, "le": "~" + le_regex(bound)}
    )
    count = selector(target.kind, src, part="_count", extra=engine)
    return (
        f"(sum(rate({count}[{window}])) - sum(rate({good}[{window}])))\n"
        f"/\nsum(rate({count}[{window}]))"
    )


def _alert(target: SloTarget, windows: Sequence[BurnWindow], budget: float) -> dict[str, object]:
    match = f'{{engine="{target.engine}", slo="{target.slo.name}"}}'
    terms = []
    for w in windows:
        limit = _num(w.factor * budget)
        terms.append(
            f"(\n  {record_name(w.long)}{match} > {limit}\n"
            f"  and\n  {record_name(w.short)}{match} > {limit}\n)"
        )
    page = windows[0].severity == "critical"
    spans = " or ".join(f"{_num(w.factor)}x over {w.long} and {w.short}" for w in windows)
    return {
        "alert": ALERT,
        "expr": "\nor\n".join(terms),
        "for": "2m" if page else "15m",
        # engine and slo are on the series already; stated here too so that promtool's
        # duplicate-rule lint tells the alerts of different SLOs apart.
        "labels": {
            "severity": windows[0].severity,
            "burn": "page" if page else "ticket",
            "engine": target.engine,
            "slo": target.slo.name,
        },
        "annotations": {
            "summary": f"Engine {{{{ $labels.engine }}}} burns the error budget of "
            f"{target.slo.spec()} too fast",
            "description": "{{ $labels.engine }} spends its " + target.slo.spec() + " error "
            "budget (" + _num(budget * 100) + " % of requests) too fast: " + spans + ". "
            "Bad-event ratio {{ $value | humanizePercentage }} over the long window.",
            "runbook_url": RUNBOOK,
        },
    }


def slo_group(target: SloTarget) -> dict[str, object]:
    check_expressible(target)
    slo = target.slo
    budget = slo.allowed_violation_rate
    labels = {"engine": target.engine, "slo": slo.name}
    rules: list[dict[str, object]] = [
        {"record": record_name(w), "expr": error_ratio_expr(target, w), "labels": labels}
        for w in WINDOWS
    ]
    rules.append(
        {
            "record": "cplane_slo:objective:ratio",
            "expr": f"vector({_num(1 - budget)})",
            "labels": labels,
        }
    )
    rules.append(
        {
            "record": "cplane_slo:error_budget:ratio",
            "expr": f"vector({_num(budget)})",
            "labels": labels,
        }
    )
    if budget * PAGE[-1].factor < 1:
        rules.append(_alert(target, PAGE, budget))
    rules.append(_alert(target, TICKET, budget))
    return {"name": f"cplane-slo-{target.engine}-{slo.name}", "rules": rules}


HEADER = (
    "# Generated by the control plane from the SLOs in its store (`cplane prometheus rules`);\n"
    "# do not edit: changes are lost when the rules are written again.\n"
)


def slo_rules_text(targets: Iterable[SloTarget]) -> str:
    """The rule file; an empty ``groups`` list when no engine has an SLO.

    Raises:
        ValidationError: an SLO cannot be expressed (the message names engine and SLO).
    """
    ordered = sorted(targets, key=lambda t: (t.engine, t.slo.name))
    return HEADER + dump_rules({"groups": [slo_group(t) for t in ordered]})
