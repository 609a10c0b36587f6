"""Fleet overview: every engine at a glance (up, traffic, latency, errors, saturation) and
the GPUs beneath them, for the first look during an incident."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash

from dashboards._common import ENGINE
from dashboards._common import engine_variable
from dashboards._common import graph
from dashboards._common import new_dashboard
from dashboards._common import quantile
from dashboards._common import rate
from dashboards._common import single

UID = "cplane-fleet"

_FAILED = f'{ENGINE},finished_reason=~"error|abort"'


def build() -> dash.Dashboard:
    return (
        new_dashboard(UID, "Control plane / Fleet overview", __doc__ or "")
        .with_variable(engine_variable())
        .with_row(dash.Row("Fleet"))
        .with_panel(single("Engines up", "short", f'sum(up{{{ENGINE},engine!=""}})'))
        .with_panel(
            single(
                "Engines down",
                "short",
                f'count(up{{{ENGINE},engine!=""}} == 0) or vector(0)',
                thresholds=[(None, "green"), (1, "red")],
            )
        )
        .with_panel(
            single(
                "Requests per second",
                "reqps",
                f"sum(rate(vllm:request_success_total{{{ENGINE}}}[$__rate_interval]))",
            )
        )
        .with_panel(
            single(
                "Generated tokens per second",
                "short",
                f"sum(rate(vllm:generation_tokens_total{{{ENGINE}}}[$__rate_interval]))",
            )
        )
        .with_panel(
            single(
                "Error ratio",
                "percentunit",
                f"sum(rate(vllm:request_success_total{{{_FAILED}}}[$__rate_interval])) / "
                f"sum(rate(vllm:request_success_total{{{ENGINE}}}[$__rate_interval]))",
                thresholds=[(None, "green"), (0.01, "orange"), (0.05, "red")],
            )
        )
        .with_panel(
            single(
                "GPUs",
                "short",
                'count(gpu_utilization_ratio{uuid!=""})',
                description="GPUs the control plane's NVML collector reads.",
            )
        )
        .with_row(dash.Row("Engines"))
        .with_panel(
            graph(
                "Requests per second", "reqps", (rate("vllm:request_success_total"), "{{engine}}")
            )
        )
        .with_panel(
            graph(
                "p99 latency",
                "s",
                (quantile(0.99, "vllm:e2e_request_latency_seconds"), "{{engine}} e2e"),
                (quantile(0.99, "vllm:time_to_first_token_seconds"), "{{engine}} TTFT"),
            )
        )
        .with_panel(
            graph(
                "Error ratio",
                "percentunit",
                (
                    f"{rate('vllm:request_success_total', _FAILED)} / "
                    f"{rate('vllm:request_success_total')}",
                    "{{engine}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Waiting requests",
                "short",
                (f"sum by (engine) (vllm:num_requests_waiting{{{ENGINE}}})", "{{engine}}"),
            )
        )
        .with_panel(
            graph(
                "Scrape target up",
                "short",
                (f'max by (engine) (up{{{ENGINE},engine!=""}})', "{{engine}}"),
            )
        )
        .with_panel(
            graph(
                "GPU utilization and memory",
                "percentunit",
                ('avg(gpu_utilization_ratio{uuid!=""})', "utilization (mean)"),
                (
                    'sum(gpu_memory_used_bytes{uuid!=""}) / sum(gpu_memory_total_bytes{uuid!=""})',
                    "memory used",
                ),
            )
        )
    )
