"""The GPU paths on real hardware, in one run whose output goes into docs/gpu.md.

    python bench/gpu_check.py [--seconds 5] [--model tiny]

1. NVML through nvidia-ml-py, by the real :class:`collectors.GpuCollector`: every series of
   two readings ``--seconds`` apart (GPM needs two), which ones the device answered "not
   supported", and whether the XID event thread started.
2. CUDA streams in the reference engine: tokens/s of the same closed-loop batch with 1, 2 and
   4 streams (one ``torch.cuda.Stream`` per executor), fp32 and bf16.
3. The kernel's queueing disciplines for chaos: is ``sch_netem`` there (the chaos probe).

On a machine without a GPU every part says so and the script still exits 0, so it can be
tried anywhere; only a GPU run belongs in docs/gpu.md.
"""

from __future__ import annotations

import argparse
import platform
import threading
import time
from collections import Counter

import torch

from collectors import GpuCollector
from controlplane.chaos import probe
from engine.batcher import EventKind
from engine.batcher import GenerationRequest
from engine.config import EngineConfig
from engine.model import MODEL_SPECS
from engine.service import Engine
from engine.tokenizer import encode


def check_nvml(seconds: float) -> None:
    print("## NVML (nvidia-ml-py, collectors.GpuCollector)\n")
    gpu = GpuCollector(event_timeout_ms=200)
    if not gpu.enabled:
        print("NVML not available: the collector disabled itself (as designed).\n")
        return
    gpu.start()
    try:
        gpu.collect(time.time())
        time.sleep(seconds)
        samples = gpu.collect(time.time())
    finally:
        gpu.close()
    per_metric = Counter(s.metric for s in samples)
    print(f"{len(samples)} samples in the second reading, {len(per_metric)} series names:\n")
    print("| series | samples | first value |")
    print("|---|---|---|")
    for metric in sorted(per_metric):
        first = next(s for s in samples if s.metric == metric)
        labels = ",".join(f"{k}={v}" for k, v in first.labels if k != "uuid")
        print(f"| `{metric}` | {per_metric[metric]} | {first.value:.6g} {labels} |")
    print()


def _tokens_per_s(
    config: EngineConfig, model: str, requests: int, max_tokens: int, device: str = "cuda"
) -> float:
    engine = Engine(MODEL_SPECS[model], config, device=torch.device(device))
    engine.start()
    try:
        done = threading.Semaphore(0)
        tokens = Counter[str]()

        def submit(i: int) -> None:
            def sink(kind: EventKind, value: int | str) -> None:
                if kind == "token":
                    tokens["n"] += 1
                elif kind in ("done", "error"):
                    done.release()

            engine.submit(
                GenerationRequest(
                    prompt_ids=encode(f"request {i} about streams"),
                    max_tokens=max_tokens,
                    ignore_eos=True,
                    sink=sink,
                )
            )

        started = time.perf_counter()
        for i in range(requests):
            submit(i)
        for _ in range(requests):
            done.acquire(timeout=120)
        return tokens["n"] / (time.perf_counter() - started)
    finally:
        engine.shutdown()


def check_streams(model: str) -> None:
    print("## CUDA streams (reference engine)\n")
    if not torch.cuda.is_available():
        print("No CUDA device: skipped.\n")
        return
    print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, model `{model}`\n")
    print("| precision | streams | batch | tokens/s |")
    print("|---|---|---|---|")
    for precision in ("fp32", "bf16"):
        for streams in (1, 2, 4):
            config = EngineConfig(max_batch_size=16, streams=streams, precision=precision)
            rate = _tokens_per_s(config, model, requests=64, max_tokens=64)
            print(f"| {precision} | {streams} | 16 | {rate:,.0f} |")
    print()


def check_netem() -> None:
    print("## Kernel queueing disciplines (chaos probe)\n")
    caps = probe(refresh=True)
    print(
        f"kernel {platform.release()}: " + ", ".join(f"{k}={v}" for k, v in caps.as_dict().items())
    )
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--model", default="tiny", choices=sorted(MODEL_SPECS))
    args = parser.parse_args()
    check_nvml(args.seconds)
    check_streams(args.model)
    check_netem()


if __name__ == "__main__":
    main()
