"""The load generator against the real reference engine (model ``tiny``) on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from engine.config import EngineConfig
from tests.engine.serving import RunningServer
from tests.engine.serving import serve_engine
from tuner.loadgen import LoadSpec
from tuner.loadgen import RequestShape
from tuner.loadgen import percentile
from tuner.loadgen import run_load_sync

FIXED = {"ignore_eos": True}


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with serve_engine(EngineConfig(max_batch_size=8)) as running:
        yield running


def test_closed_loop_is_bounded_by_count_and_reports_percentiles(server: RunningServer) -> None:
    spec = LoadSpec(
        base_url=server.base_url,
        model="tiny",
        mode="closed",
        concurrency=4,
        duration_s=30,
        max_requests=20,
        shapes=(RequestShape(prompt_len=10, max_tokens=6),),
        extra_body=FIXED,
    )
    result = run_load_sync(spec)
    assert (result.sent, result.ok, result.failed, result.rejected) == (20, 20, 0, 0)
    assert all(r.completion_tokens == 6 for r in result.records)
    assert result.p50 is not None and result.p95 is not None and result.p99 is not None
    assert 0 < result.p50 <= result.p95 <= result.p99
    assert result.achieved_rps > 0
    assert result.ttft_p50 is None  # no TTFT without streaming
    assert result.summary()["ok"] == 20


def test_constant_rate_spaces_arrivals_evenly(server: RunningServer) -> None:
    spec = LoadSpec(
        base_url=server.base_url,
        model="tiny",
        mode="constant",
        rate=40,
        duration_s=0.5,
        shapes=(RequestShape(prompt_len=5, max_tokens=2),),
    )
    result = run_load_sync(spec)
    assert 18 <= result.sent <= 21
    starts = [r.start_s for r in result.records]
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert percentile(gaps, 50) == pytest.approx(1 / 40, abs=0.01)
    assert result.failed == 0


def test_poisson_arrivals_are_seeded(server: RunningServer) -> None:
    def run(seed: int) -> int:
        spec = LoadSpec(
            base_url=server.base_url,
            model="tiny",
            mode="poisson",
            rate=60,
            duration_s=0.5,
            max_requests=1000,
            seed=seed,
            shapes=(RequestShape(prompt_len=5, max_tokens=2),),
        )
        result = run_load_sync(spec)
        assert result.failed == 0
        return result.sent

    counts = [run(seed) for seed in (1, 1, 2)]
    assert counts[0] == counts[1]
    assert all(10 <= c <= 60 for c in counts)


def test_streaming_measures_ttft_and_the_mix_is_used(server: RunningServer) -> None:
    spec = LoadSpec(
        base_url=server.base_url,
        model="tiny",
        mode="closed",
        concurrency=2,
        duration_s=30,
        max_requests=16,
        stream=True,
        shapes=(RequestShape(4, 3, weight=1), RequestShape(40, 9, weight=1)),
        extra_body=FIXED,
    )
    result = run_load_sync(spec)
    assert result.ok == 16
    assert {r.completion_tokens for r in result.records} == {3, 9}
    for record in result.records:
        assert record.ttft_s is not None and 0 < record.ttft_s <= record.latency_s
    assert result.ttft_p99 is not None and result.p99 is not None
    assert result.ttft_p99 <= result.p99


def test_overload_is_counted_as_rejected_not_failed() -> None:
    with serve_engine(EngineConfig(max_batch_size=1), max_queue=1) as running:
        spec = LoadSpec(
            base_url=running.base_url,
            model="tiny",
            mode="constant",
            rate=300,
            duration_s=0.3,
            shapes=(RequestShape(prompt_len=20, max_tokens=60),),
            extra_body=FIXED,
        )
        result = run_load_sync(spec)
    assert result.rejected > 0
    assert result.ok > 0
    assert result.failed == 0
    assert result.ok + result.rejected == result.sent


def test_timeout_bounds_each_request(server: RunningServer) -> None:
    spec = LoadSpec(
        base_url=server.base_url,
        model="tiny",
        mode="closed",
        concurrency=1,
        max_requests=2,
        stream=True,
        timeout_s=0.01,
        shapes=(RequestShape(prompt_len=100, max_tokens=150),),
        extra_body=FIXED,
    )
    result = run_load_sync(spec)
    assert result.failed == 2
    assert all(r.error == "timeout" and r.latency_s < 1.0 for r in result.records)


def test_unreachable_server_counts_failures() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    spec = LoadSpec(
        base_url=f"http://127.0.0.1:{port}",
        model="tiny",
        mode="closed",
        concurrency=1,
        max_requests=3,
        timeout_s=2,
    )
    result = run_load_sync(spec)
    assert (result.failed, result.ok) == (3, 0)
    assert all(r.error for r in result.records)
    assert result.p99 is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "constant"},
        {"mode": "poisson", "rate": 0},
        {"mode": "closed"},
        {"mode": "closed", "concurrency": 0},
        {"mode": "closed", "concurrency": 1, "duration_s": 0},
        {"mode": "closed", "concurrency": 1, "shapes": ()},
        {"mode": "closed", "concurrency": 1, "shapes": (RequestShape(1, 0),)},
    ],
)
def test_invalid_specs_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        LoadSpec(base_url="http://127.0.0.1:1", model="m", **kwargs)  # type: ignore[arg-type]


def test_percentile_interpolates() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 99) == 5.0
    assert percentile([], 50) is None
