"""Prometheus metrics with vLLM's names wherever vLLM has the concept.

Each app gets its own ``CollectorRegistry`` so several engines (or tests) in one process
never share counters. Latency histograms use vLLM's boundaries, merged with vLLM's finer
TTFT boundaries (and 0.15/0.2/0.4 s) so that a CPU engine's sub-second latencies are
resolvable; vLLM's own e2e buckets start at 0.3 s.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Gauge
from prometheus_client import Histogram

from engine.config import EngineConfig

VLLM_TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
VLLM_E2E_BUCKETS = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
    240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip
VLLM_ITL_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0,
)  # fmt: skip
# A 10 %-spaced grid from 10 ms to 20 s on top of vLLM's boundaries: histogram_quantile then
# resolves a latency quantile to within about 10 % (what the SLO maths and the guard's
# threshold rounding need), at the cost of ~80 more lines per latency histogram.
FINE_GRID = tuple(float(f"{0.01 * 1.1**k:.4g}") for k in range(80) if 0.01 * 1.1**k <= 20.0)
LATENCY_BUCKETS = tuple(
    sorted(set(VLLM_TTFT_BUCKETS) | set(VLLM_E2E_BUCKETS) | {0.15, 0.2, 0.4} | set(FINE_GRID))
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)

FINISHED_REASONS = ("stop", "length", "abort", "error")
FAILURE_REASONS = ("invalid", "rejected", "error")


class EngineMetrics:
    def __init__(self, model_name: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.model_name = model_name
        reg = self.registry
        labels = ["model_name"]
        self._running = Gauge(
            "vllm:num_requests_running",
            "Number of requests in model execution batches.",
            labels,
            registry=reg,
        )
        self._waiting = Gauge(
            "vllm:num_requests_waiting",
            "Number of requests waiting to be processed.",
            labels,
            registry=reg,
        )
        self.e2e = Histogram(
            "vllm:e2e_request_latency_seconds",
            "Histogram of end to end request latency in seconds.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=reg,
        ).labels(model_name)
        self.ttft = Histogram(
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=reg,
        ).labels(model_name)
        self.itl = Histogram(
            "vllm:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds.",
            labels,
            buckets=VLLM_ITL_BUCKETS,
            registry=reg,
        ).labels(model_name)
        self.queue_time = Histogram(
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=reg,
        ).labels(model_name)
        self.prompt_tokens = Counter(
            "vllm:prompt_tokens", "Number of prefill tokens processed.", labels, registry=reg
        ).labels(model_name)
        self.generation_tokens = Counter(
            "vllm:generation_tokens",
            "Number of generation tokens processed.",
            labels,
            registry=reg,
        ).labels(model_name)
        self._success = Counter(
            "vllm:request_success",
            "Count of successfully processed requests.",
            ["model_name", "finished_reason"],
            registry=reg,
        )
        self._rejections = Counter(
            "vllm:admission_rejections",
            "Requests refused at admission (queue full), answered 429.",
            ["model_name", "reason"],
            registry=reg,
        )
        self._failures = Counter(
            "engine_request_failures",
            "Requests that did not complete: invalid input, rejected at admission, or error.",
            ["model_name", "reason"],
            registry=reg,
        )
        self.batch_size = Histogram(
            "engine_batch_size",
            "Number of sequences in each decode step.",
            labels,
            buckets=BATCH_BUCKETS,
            registry=reg,
        ).labels(model_name)
        self._config_info = Gauge(
            "engine_config_info",
            "The live engine configuration (value 1, data in labels).",
            [
                "model_name",
                "model",
                "max_batch_size",
                "streams",
                "precision",
                "max_queue_delay_ms",
            ],
            registry=reg,
        )
        self._switches = Counter(
            "engine_config_switches",
            "Live configuration changes by result.",
            ["model_name", "result"],
            registry=reg,
        )
        for reason in FINISHED_REASONS:
            self._success.labels(model_name, reason)
        for reason in FAILURE_REASONS:
            self._failures.labels(model_name, reason)
        self._rejections.labels(model_name, "queue_full")
        for result in ("ok", "failed"):
            self._switches.labels(model_name, result)

    def bind_gauges(self, running: Callable[[], int], waiting: Callable[[], int]) -> None:
        """Gauges read live counts at scrape time instead of being updated on every step."""
        self._running.labels(self.model_name).set_function(lambda: float(running()))
        self._waiting.labels(self.model_name).set_function(lambda: float(waiting()))

    def finished(self, reason: str) -> None:
        self._success.labels(self.model_name, reason).inc()
        if reason == "error":
            self._failures.labels(self.model_name, "error").inc()

    def rejected(self) -> None:
        self._rejections.labels(self.model_name, "queue_full").inc()
        self._failures.labels(self.model_name, "rejected").inc()

    def invalid(self) -> None:
        self._failures.labels(self.model_name, "invalid").inc()

    def errored(self) -> None:
        """A request that failed on an unexpected exception before any generation ran."""
        self._failures.labels(self.model_name, "error").inc()

    def switched(self, ok: bool) -> None:
        self._switches.labels(self.model_name, "ok" if ok else "failed").inc()

    def set_config(self, model: str, config: EngineConfig) -> None:
        self._config_info.clear()
        self._config_info.labels(
            self.model_name,
            model,
            str(config.max_batch_size),
            str(config.streams),
            config.precision,
            f"{config.max_queue_delay_ms:g}",
        ).set(1)
