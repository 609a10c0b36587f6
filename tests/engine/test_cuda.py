"""The CUDA path (one torch.cuda.Stream per executor); skipped on machines without a GPU."""

from __future__ import annotations

import threading

import pytest
import torch

from engine.batcher import EventKind
from engine.batcher import GenerationRequest
from engine.config import EngineConfig
from engine.model import MODEL_SPECS
from engine.model import KVCache
from engine.model import build_model
from engine.service import Engine
from engine.tokenizer import encode

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_cuda_prefill_matches_cpu() -> None:
    spec = MODEL_SPECS["tiny"]
    cpu = build_model(spec, 0)
    gpu = build_model(spec, 0).to("cuda")
    prompt = encode("same maths on the device")
    with torch.inference_mode():
        ref = cpu.prefill_one(prompt, KVCache(spec, 1, torch.float32, torch.device("cpu")), 0)
        out = gpu.prefill_one(prompt, KVCache(spec, 1, torch.float32, torch.device("cuda")), 0)
    torch.testing.assert_close(out.cpu(), ref, rtol=1e-3, atol=1e-3)


def test_cuda_engine_serves_on_several_streams_and_switches() -> None:
    engine = Engine(
        MODEL_SPECS["tiny"],
        EngineConfig(max_batch_size=4, streams=2),
        device=torch.device("cuda"),
    )
    engine.start()
    try:
        done: list[threading.Event] = []
        requests = []
        for i in range(8):
            event = threading.Event()

            def sink(kind: EventKind, value: int | str, event: threading.Event = event) -> None:
                if kind != "token":
                    event.set()

            request = GenerationRequest(encode(f"cuda {i}"), 12, sink, ignore_eos=True)
            engine.submit(request)
            done.append(event)
            requests.append(request)
            if i == 3:
                engine.switch(EngineConfig(max_batch_size=8, streams=3, precision="bf16"))
        for event in done:
            assert event.wait(60)
        assert all(r.finished_reason == "length" for r in requests)
        assert all(len(r.generated) == 12 for r in requests)
    finally:
        engine.shutdown()
