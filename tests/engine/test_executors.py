"""Continuous batching through the real engine (no HTTP): join, leave, correctness."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from engine.batcher import EventKind
from engine.batcher import GenerationRequest
from engine.config import EngineConfig
from engine.model import MODEL_SPECS
from engine.model import greedy_generate
from engine.service import Engine
from engine.tokenizer import encode
from tests.engine.serving import wait_until


class Recorder:
    def __init__(self) -> None:
        self.tokens: list[int] = []
        self.done = threading.Event()
        self.reason: str | None = None

    def __call__(self, kind: EventKind, value: int | str) -> None:
        if kind == "token":
            self.tokens.append(int(value))
        else:
            self.reason = str(value)
            self.done.set()


def _submit(engine: Engine, text: str, max_tokens: int) -> tuple[GenerationRequest, Recorder]:
    recorder = Recorder()
    request = GenerationRequest(encode(text), max_tokens, recorder, ignore_eos=True)
    engine.submit(request)
    return request, recorder


@pytest.fixture
def engine() -> Iterator[Engine]:
    eng = Engine(MODEL_SPECS["tiny"], EngineConfig(max_batch_size=4, streams=1), seed=3)
    eng.start()
    yield eng
    eng.shutdown()


def _reference(engine: Engine, text: str, max_tokens: int) -> list[int]:
    return greedy_generate(engine.model_for("fp32"), encode(text), max_tokens)


def test_request_joins_a_running_batch_and_leaves_before_it_ends(engine: Engine) -> None:
    long_req, long_rec = _submit(engine, "a long running request", 200)
    wait_until(lambda: len(long_rec.tokens) >= 3)
    short_req, short_rec = _submit(engine, "short", 4)
    assert short_rec.done.wait(10)
    # It joined while the long one was running, and left while it was still running.
    assert short_req.admitted_at is not None and long_req.first_token_at is not None
    assert short_req.admitted_at > long_req.first_token_at
    assert long_rec.done.wait(30)
    assert short_req.last_token_at is not None and long_req.last_token_at is not None
    assert short_req.last_token_at < long_req.last_token_at
    registry = engine.metrics.registry
    labels = {"model_name": "tiny"}
    steps = registry.get_sample_value("engine_batch_size_count", labels)
    solo_steps = registry.get_sample_value("engine_batch_size_bucket", {**labels, "le": "1.0"})
    assert steps is not None and solo_steps is not None
    assert solo_steps < steps  # some decode steps ran both sequences together
    # Sharing the batch did not change either output.
    assert short_rec.tokens == _reference(engine, "short", 4)
    assert long_rec.tokens == _reference(engine, "a long running request", 200)


def test_many_ragged_requests_through_a_small_batch_match_the_reference(engine: Engine) -> None:
    texts = [f"prompt number {i} " * (i % 4 + 1) for i in range(10)]
    lengths = [3 + (7 * i) % 20 for i in range(10)]
    submitted = [_submit(engine, t, n) for t, n in zip(texts, lengths, strict=True)]
    for (request, recorder), text, n in zip(submitted, texts, lengths, strict=True):
        assert recorder.done.wait(30)
        assert recorder.reason == "length"
        assert len(request.generated) == n
        assert recorder.tokens == _reference(engine, text, n)


def test_batch_size_never_exceeds_the_configured_maximum(engine: Engine) -> None:
    submitted = [_submit(engine, f"req {i}", 30) for i in range(9)]
    for _, recorder in submitted:
        assert recorder.done.wait(30)
    hist = engine.metrics.registry.get_sample_value(
        "engine_batch_size_bucket", {"model_name": "tiny", "le": "4.0"}
    )
    total = engine.metrics.registry.get_sample_value(
        "engine_batch_size_count", {"model_name": "tiny"}
    )
    assert total is not None and total > 0
    assert hist == total


def test_cancelled_request_leaves_the_batch(engine: Engine) -> None:
    request, recorder = _submit(engine, "cancel me", 240)
    wait_until(lambda: len(recorder.tokens) >= 2)
    request.cancel()
    assert recorder.done.wait(10)
    assert recorder.reason == "abort"
    assert len(request.generated) < 240
