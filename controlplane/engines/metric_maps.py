"""Metric maps of the engine kinds the control plane scrapes, and the canonical series types.

One table per engine kind maps its own metric names onto :class:`Series`, following the
engines' exposition as captured under ``tests/fixtures/collectors/<kind>/metrics.txt``.
Names move between releases, so a series may list several sources (old name and new);
only one of them is present in any given exposition. Units are converted to the canonical
ones with ``scale``: Triton reports cumulative microseconds (1e-6) and a millisecond
histogram (1e-3).

Two cross-type rules let an engine feed a series it does not expose in the canonical shape
(applied by the parser):

- a counter under a histogram series feeds the histogram's ``_sum`` (Triton has cumulative
  latency counters, no latency histogram by default: the mean is ``_sum`` over requests);
- a histogram under a counter series feeds the counter with its ``_sum`` (TGI counts
  prompt tokens only as the sum of its ``tgi_request_input_length`` histogram).
"""

from __future__ import annotations

from collections.abc import Mapping

from controlplane.domain import MetricMap
from controlplane.domain import MetricSource
from controlplane.domain import Series
from controlplane.domain import ValidationError
from controlplane.domain.engines import MetricType
from controlplane.engines.reference import REFERENCE_METRICS

# The canonical shape of each series; ``None``: the source's own type (batch size is a
# histogram on the reference engine and a gauge of running requests elsewhere).
SERIES_TYPES: Mapping[Series, MetricType | None] = {
    Series.requests_running: "gauge",
    Series.requests_waiting: "gauge",
    Series.request_latency: "histogram",
    Series.time_to_first_token: "histogram",
    Series.queue_time: "histogram",
    Series.requests_succeeded: "counter",
    Series.requests_failed: "counter",
    Series.prompt_tokens: "counter",
    Series.generation_tokens: "counter",
    Series.batch_size: None,
    Series.kv_cache_usage: "gauge",
}

_VLLM_FAILED = {"finished_reason": ("error", "abort")}

VLLM_METRICS: MetricMap = {
    Series.requests_running: (MetricSource("vllm:num_requests_running", "gauge"),),
    Series.requests_waiting: (MetricSource("vllm:num_requests_waiting", "gauge"),),
    Series.request_latency: (MetricSource("vllm:e2e_request_latency_seconds", "histogram"),),
    Series.time_to_first_token: (MetricSource("vllm:time_to_first_token_seconds", "histogram"),),
    Series.queue_time: (MetricSource("vllm:request_queue_time_seconds", "histogram"),),
    # request_success counts every finished request, errors and aborts included.
    Series.requests_succeeded: (
        MetricSource("vllm:request_success", "counter", exclude=_VLLM_FAILED),
    ),
    Series.requests_failed: (MetricSource("vllm:request_success", "counter", match=_VLLM_FAILED),),
    Series.prompt_tokens: (MetricSource("vllm:prompt_tokens", "counter"),),
    Series.generation_tokens: (MetricSource("vllm:generation_tokens", "counter"),),
    Series.batch_size: (MetricSource("vllm:num_requests_running", "gauge"),),
    # A fraction despite the name; gpu_cache_usage_perc is the name removed in 2025-11.
    Series.kv_cache_usage: (
        MetricSource("vllm:kv_cache_usage_perc", "gauge"),
        MetricSource("vllm:gpu_cache_usage_perc", "gauge"),
    ),
}

SGLANG_METRICS: MetricMap = {
    Series.requests_running: (MetricSource("sglang:num_running_reqs", "gauge"),),
    Series.requests_waiting: (MetricSource("sglang:num_queue_reqs", "gauge"),),
    Series.request_latency: (MetricSource("sglang:e2e_request_latency_seconds", "histogram"),),
    Series.time_to_first_token: (MetricSource("sglang:time_to_first_token_seconds", "histogram"),),
    Series.queue_time: (MetricSource("sglang:queue_time_seconds", "histogram"),),
    # num_requests counts every request, aborted ones included.
    Series.requests_succeeded: (MetricSource("sglang:num_requests", "counter"),),
    Series.requests_failed: (MetricSource("sglang:num_aborted_requests", "counter"),),
    Series.prompt_tokens: (MetricSource("sglang:prompt_tokens", "counter"),),
    Series.generation_tokens: (MetricSource("sglang:generation_tokens", "counter"),),
    Series.batch_size: (MetricSource("sglang:num_running_reqs", "gauge"),),
    Series.kv_cache_usage: (MetricSource("sglang:token_usage", "gauge"),),
}

# TGI: seconds without a unit suffix, no TTFT histogram, no KV-cache gauge.
TGI_METRICS: MetricMap = {
    Series.requests_running: (MetricSource("tgi_batch_current_size", "gauge"),),
    Series.requests_waiting: (MetricSource("tgi_queue_size", "gauge"),),
    Series.request_latency: (MetricSource("tgi_request_duration", "histogram"),),
    Series.queue_time: (MetricSource("tgi_request_queue_duration", "histogram"),),
    Series.requests_succeeded: (MetricSource("tgi_request_success", "counter"),),
    Series.requests_failed: (MetricSource("tgi_request_failure", "counter"),),
    Series.prompt_tokens: (MetricSource("tgi_request_input_length", "histogram"),),
    Series.generation_tokens: (MetricSource("tgi_request_generated_tokens", "histogram"),),
    Series.batch_size: (MetricSource("tgi_batch_current_size", "gauge"),),
}

# Triton (+ TensorRT-LLM backend): model label ``model``; latencies as cumulative
# microsecond counters; the first-response histogram (opt-in) in milliseconds.
TRITON_METRICS: MetricMap = {
    Series.requests_running: (
        MetricSource("nv_trt_llm_request_metrics", "gauge", match={"request_type": ("active",)}),
    ),
    Series.requests_waiting: (MetricSource("nv_inference_pending_request_count", "gauge"),),
    Series.request_latency: (
        MetricSource("nv_inference_request_duration_us", "counter", scale=1e-6),
    ),
    Series.time_to_first_token: (
        MetricSource("nv_inference_first_response_histogram_ms", "histogram", scale=1e-3),
    ),
    Series.queue_time: (MetricSource("nv_inference_queue_duration_us", "counter", scale=1e-6),),
    Series.requests_succeeded: (MetricSource("nv_inference_request_success", "counter"),),
    Series.requests_failed: (MetricSource("nv_inference_request_failure", "counter"),),
    Series.kv_cache_usage: (
        MetricSource(
            "nv_trt_llm_kv_cache_block_metrics",
            "gauge",
            match={"kv_cache_block_type": ("fraction",)},
        ),
    ),
}

METRIC_MAPS: Mapping[str, MetricMap] = {
    "reference": REFERENCE_METRICS,
    "vllm": VLLM_METRICS,
    "sglang": SGLANG_METRICS,
    "tgi": TGI_METRICS,
    "triton": TRITON_METRICS,
    "trtllm": TRITON_METRICS,
    # A process-managed engine is scraped on replica 0's own frontend; the collectors read
    # it with vLLM's names (the reference and vLLM presets).
    "process": REFERENCE_METRICS,
}


def metric_map_for(kind: str) -> MetricMap:
    """The metric map of an engine kind.

    Raises:
        ValidationError: the kind has no metric map.
    """
    try:
        return METRIC_MAPS[kind]
    except KeyError:
        known = ", ".join(sorted(METRIC_MAPS))
        raise ValidationError(
            f"no metric map for engine kind {kind!r} (known: {known})", field="kind"
        ) from None
