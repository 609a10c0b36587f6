"""The switch protocol of the engine (no HTTP)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from engine.batcher import EventKind
from engine.batcher import GenerationRequest
from engine.config import ConfigError
from engine.config import EngineConfig
from engine.model import MODEL_SPECS
from engine.model import CausalLM
from engine.precision import Precision
from engine.service import ConfigBuildError
from engine.service import Engine
from engine.tokenizer import encode


class Recorder:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.reason: str | None = None

    def __call__(self, kind: EventKind, value: int | str) -> None:
        if kind != "token":
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


def test_switch_keeps_queued_and_running_requests_alive(engine: Engine) -> None:
    submitted = [_submit(engine, f"switch {i}", 40) for i in range(8)]
    for config in (
        EngineConfig(max_batch_size=2, streams=2, precision="bf16"),
        EngineConfig(max_batch_size=8, streams=1, precision="int8"),
        EngineConfig(max_batch_size=8, streams=1, precision="fp32"),
    ):
        assert engine.switch(config) == config
        assert engine.config == config
    for request, recorder in submitted:
        assert recorder.done.wait(30)
        assert recorder.reason == "length"
        assert len(request.generated) == 40
    assert engine.wait_drained(10)
    assert engine.running_count() == 0


def test_failed_build_keeps_the_old_config_serving(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = engine.config
    real = engine.model_for

    def broken(precision: Precision) -> CausalLM:
        if precision == "bf16":
            raise RuntimeError("simulated out of memory")
        return real(precision)

    monkeypatch.setattr(engine, "model_for", broken)
    with pytest.raises(ConfigBuildError, match="simulated out of memory"):
        engine.switch(EngineConfig(max_batch_size=4, precision="bf16"))
    assert engine.config == before
    request, recorder = _submit(engine, "still serving", 5)
    assert recorder.done.wait(10)
    assert recorder.reason == "length"
    failed = engine.metrics.registry.get_sample_value(
        "engine_config_switches_total", {"model_name": "tiny", "result": "failed"}
    )
    assert failed == 1.0


def test_switch_refuses_configs_outside_the_search_space(engine: Engine) -> None:
    before = engine.config
    with pytest.raises(ConfigError):
        engine.switch(EngineConfig(max_batch_size=0))
    assert engine.config == before
