from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine.config import EngineConfig
from engine.metrics import EngineMetrics
from tests.engine.serving import RunningServer
from tests.engine.serving import serve_engine

VLLM_NAMES = {
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:e2e_request_latency_seconds",
    "vllm:time_to_first_token_seconds",
    "vllm:request_queue_time_seconds",
    "vllm:prompt_tokens",
    "vllm:generation_tokens",
    "vllm:request_success",
}


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with serve_engine(EngineConfig(max_batch_size=4, streams=1, precision="fp32")) as running:
        yield running


def _scrape(server: RunningServer) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"{server.base_url}/metrics").text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def _value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:  # noqa: E501
    return samples[(name, frozenset({"model_name": "tiny", **labels}.items()))]


def test_exposition_parses_and_uses_vllm_names(server: RunningServer) -> None:
    text = httpx.get(f"{server.base_url}/metrics").text
    names = {family.name for family in text_string_to_metric_families(text)}
    assert VLLM_NAMES <= names
    assert {"engine_batch_size", "engine_config_info", "engine_request_failures"} <= names


def test_counters_move_as_requests_are_served(server: RunningServer) -> None:
    before = _scrape(server)
    n, max_tokens = 3, 6
    prompt = "count me"
    for _ in range(n):
        r = httpx.post(
            f"{server.base_url}/v1/completions",
            json={"model": "tiny", "prompt": prompt, "max_tokens": max_tokens, "ignore_eos": True},
        )
        assert r.status_code == 200
    httpx.post(f"{server.base_url}/v1/completions", json={"model": "tiny", "max_tokens": 0})
    after = _scrape(server)

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert delta("vllm:request_success_total", finished_reason="length") == n
    assert delta("vllm:generation_tokens_total") == n * max_tokens
    assert delta("vllm:prompt_tokens_total") == n * (len(prompt) + 1)
    assert delta("vllm:time_to_first_token_seconds_count") == n
    assert delta("vllm:e2e_request_latency_seconds_count") == n
    assert delta("vllm:request_queue_time_seconds_count") == n
    assert delta("vllm:inter_token_latency_seconds_count") == n * (max_tokens - 1)
    assert delta("engine_request_failures_total", reason="invalid") == 1
    assert _value(after, "vllm:num_requests_running") == 0
    assert _value(after, "vllm:num_requests_waiting") == 0


def test_config_info_tracks_the_live_config(server: RunningServer) -> None:
    samples = _scrape(server)
    info = [labels for (name, labels), v in samples.items() if name == "engine_config_info"]
    assert len(info) == 1
    labels = dict(info[0])
    assert labels["max_batch_size"] == "4"
    assert labels["precision"] == "fp32"
    assert labels["streams"] == "1"
    assert labels["model"] == "tiny"


def test_latency_buckets_include_vllm_boundaries_and_fine_ones() -> None:
    metrics = EngineMetrics("m")
    metrics.e2e.observe(0.05)
    bounds = {
        s.labels["le"]
        for f in metrics.registry.collect()
        if f.name == "vllm:e2e_request_latency_seconds"
        for s in f.samples
        if s.name.endswith("_bucket")
    }
    for vllm_bound in ("0.3", "0.5", "0.8", "1.0", "1.5", "2.5", "10.0"):
        assert vllm_bound in bounds
    assert len([b for b in bounds if b != "+Inf" and float(b) < 1.0]) >= 10


def test_each_app_has_its_own_registry() -> None:
    a = EngineMetrics("a")
    b = EngineMetrics("a")
    a.generation_tokens.inc(5)
    assert b.registry.get_sample_value("vllm:generation_tokens_total", {"model_name": "a"}) == 0
