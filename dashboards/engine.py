"""Engine detail: what one engine (or a few) is doing, from the engine's own ``/metrics``.

Names are the vLLM exposition the reference engine also speaks (``vllm:*``), plus the
reference engine's own batch-size histogram and failure counter, and the engine process's
memory and CPU as the control plane's host collector exports them.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash

from dashboards._common import ENGINE
from dashboards._common import engine_variable
from dashboards._common import graph
from dashboards._common import new_dashboard
from dashboards._common import quantile
from dashboards._common import rate

UID = "cplane-engine"


def build() -> dash.Dashboard:
    failed = f'{ENGINE},finished_reason=~"error|abort"'
    return (
        new_dashboard(UID, "Control plane / Engine detail", __doc__ or "")
        .with_variable(engine_variable())
        .with_row(dash.Row("Traffic"))
        .with_panel(
            graph(
                "Requests per second",
                "reqps",
                (rate("vllm:request_success_total"), "{{engine}} finished"),
                (
                    rate("vllm:request_success_total", by="engine, finished_reason"),
                    "{{engine}} {{finished_reason}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Tokens per second",
                "short",
                (rate("vllm:generation_tokens_total"), "{{engine}} generated"),
                (rate("vllm:prompt_tokens_total"), "{{engine}} prompt"),
            )
        )
        .with_row(dash.Row("Latency"))
        .with_panel(
            graph(
                "End-to-end latency p50 / p99",
                "s",
                (quantile(0.5, "vllm:e2e_request_latency_seconds"), "{{engine}} p50"),
                (quantile(0.99, "vllm:e2e_request_latency_seconds"), "{{engine}} p99"),
            )
        )
        .with_panel(
            graph(
                "Time to first token p50 / p99",
                "s",
                (quantile(0.5, "vllm:time_to_first_token_seconds"), "{{engine}} p50"),
                (quantile(0.99, "vllm:time_to_first_token_seconds"), "{{engine}} p99"),
            )
        )
        .with_panel(
            graph(
                "Inter-token latency p50 / p99",
                "s",
                (quantile(0.5, "vllm:inter_token_latency_seconds"), "{{engine}} p50"),
                (quantile(0.99, "vllm:inter_token_latency_seconds"), "{{engine}} p99"),
            )
        )
        .with_panel(
            graph(
                "Queue time p99",
                "s",
                (quantile(0.99, "vllm:request_queue_time_seconds"), "{{engine}} p99"),
            )
        )
        .with_row(dash.Row("Saturation"))
        .with_panel(
            graph(
                "Queue and running requests",
                "short",
                (f"sum by (engine) (vllm:num_requests_waiting{{{ENGINE}}})", "{{engine}} waiting"),
                (f"sum by (engine) (vllm:num_requests_running{{{ENGINE}}})", "{{engine}} running"),
            )
        )
        .with_panel(
            graph(
                "Batch size",
                "short",
                (quantile(0.5, "engine_batch_size"), "{{engine}} p50"),
                (
                    f"{rate('engine_batch_size_sum')} / {rate('engine_batch_size_count')}",
                    "{{engine}} mean",
                ),
                description="Requests per decode step (reference engine's histogram).",
            )
        )
        .with_panel(
            graph(
                "KV cache usage",
                "percentunit",
                (
                    f"max by (engine) (vllm:kv_cache_usage_perc{{{ENGINE}}})",
                    "{{engine}}",
                ),
                description="A fraction despite the name (vLLM); 1 is full.",
            )
        )
        .with_panel(
            graph(
                "Engine process memory",
                "bytes",
                (
                    f"max by (engine) (host_engine_process_resident_memory_bytes{{{ENGINE}}})",
                    "{{engine}} RSS",
                ),
                description="Resident memory of the engine's process (host collector); "
                "a steady climb under steady load suggests a leak.",
                width=6,
            )
        )
        .with_panel(
            graph(
                "Engine process CPU",
                "short",
                (
                    f"sum by (engine) (rate(host_engine_process_cpu_seconds_total{{{ENGINE}}}"
                    "[$__rate_interval]))",
                    "{{engine}} cores",
                ),
                width=6,
            )
        )
        .with_row(dash.Row("Errors"))
        .with_panel(
            graph(
                "Errors per second",
                "reqps",
                (
                    rate("vllm:request_success_total", failed, by="engine, finished_reason"),
                    "{{engine}} {{finished_reason}}",
                ),
                (
                    rate("engine_request_failures_total", by="engine, reason"),
                    "{{engine}} failure {{reason}}",
                ),
                (
                    rate("vllm:admission_rejections_total", by="engine, reason"),
                    "{{engine}} rejected {{reason}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Error ratio",
                "percentunit",
                (
                    f"{rate('vllm:request_success_total', failed)} / "
                    f"{rate('vllm:request_success_total')}",
                    "{{engine}}",
                ),
            )
        )
    )
