"""SLOs: burn rate and error budget left for the three SLO kinds the control plane knows
(end-to-end latency, time to first token, error rate), computed from the engines' raw
series so the dashboard works before any recording rule exists.

A latency SLO "p99 <= T" is read as "at most 1 % of requests slower than T": the bad share
is ``1 - bucket{le=T} / count``, exact only when T is a bucket boundary (the threshold
variables offer only boundaries). Burn rate is the bad share over a window divided by the
allowed share; 1 spends the budget exactly over the SLO period, 14.4 over 1 h and 6 over 6 h
are the page thresholds of the multi-window, multi-burn-rate scheme.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash

from dashboards._common import ENGINE
from dashboards._common import custom_variable
from dashboards._common import engine_variable
from dashboards._common import graph
from dashboards._common import new_dashboard
from dashboards._common import single

UID = "cplane-slo"
WINDOWS = ("5m", "1h", "6h")
BUDGET_PERIOD = "30d"
_BUCKETS = ["0.1", "0.25", "0.5", "1.0", "2.5", "5.0"]
BURN_STEPS: list[tuple[float | None, str]] = [(None, "green"), (1, "orange"), (6, "red")]
BUDGET_STEPS: list[tuple[float | None, str]] = [(None, "red"), (0.25, "orange"), (0.5, "green")]


def error_ratio(window: str) -> str:
    bad = f'{ENGINE},finished_reason=~"error|abort"'
    return (
        f"(sum by (engine) (increase(vllm:request_success_total{{{bad}}}[{window}])) / "
        f"sum by (engine) (increase(vllm:request_success_total{{{ENGINE}}}[{window}])))"
    )


def slow_ratio(histogram: str, le_var: str, window: str) -> str:
    return (
        f'(1 - sum by (engine) (increase({histogram}_bucket{{{ENGINE},le="${le_var}"}}'
        f"[{window}])) / sum by (engine) (increase({histogram}_count{{{ENGINE}}}[{window}])))"
    )


_KINDS = (
    ("Error rate", lambda w: error_ratio(w), "error_budget"),
    (
        "Latency",
        lambda w: slow_ratio("vllm:e2e_request_latency_seconds", "latency_le", w),
        "latency_budget",
    ),
    (
        "TTFT",
        lambda w: slow_ratio("vllm:time_to_first_token_seconds", "ttft_le", w),
        "ttft_budget",
    ),
)


def build() -> dash.Dashboard:
    board = (
        new_dashboard(UID, "Control plane / SLOs", __doc__ or "")
        .with_variable(engine_variable())
        .with_variable(
            custom_variable(
                "error_budget", "Allowed error rate", ["0.001", "0.005", "0.01", "0.05"], "0.01"
            )
        )
        .with_variable(custom_variable("latency_le", "Latency threshold (s)", _BUCKETS, "0.5"))
        .with_variable(
            custom_variable(
                "latency_budget",
                "Allowed share slower (1 - quantile)",
                ["0.001", "0.01", "0.05"],
                "0.01",
            )
        )
        .with_variable(custom_variable("ttft_le", "TTFT threshold (s)", _BUCKETS, "0.5"))
        .with_variable(
            custom_variable(
                "ttft_budget", "Allowed share of slow TTFT", ["0.001", "0.01", "0.05"], "0.05"
            )
        )
    )
    board = board.with_row(dash.Row(f"Error budget left ({BUDGET_PERIOD})"))
    for title, ratio, budget in _KINDS:
        board = board.with_panel(
            single(
                f"{title}: budget left",
                "percentunit",
                f"1 - {ratio(BUDGET_PERIOD)} / ${budget}",
                legend="{{engine}}",
                width=8,
                thresholds=BUDGET_STEPS,
                description=f"Share of the {BUDGET_PERIOD} error budget not yet spent "
                "(negative: overspent).",
            )
        )
    for title, ratio, budget in _KINDS:
        board = board.with_row(dash.Row(f"{title} burn rate"))
        board = board.with_panel(
            graph(
                f"{title} burn rate",
                "short",
                *((f"{ratio(w)} / ${budget}", f"{{{{engine}}}} {w}") for w in WINDOWS),
                description="Bad share over the window divided by the allowed share.",
                width=16,
            )
        )
        board = board.with_panel(
            single(
                f"{title} burn rate (1h)",
                "short",
                f"{ratio('1h')} / ${budget}",
                legend="{{engine}}",
                width=8,
                thresholds=BURN_STEPS,
            )
        )
    return board
