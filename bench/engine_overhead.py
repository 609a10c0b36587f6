"""Serving overhead: engine tokens/s at a batch size vs the bare model loop at that batch.

The engine (HTTP, JSON, queue, scheduler, per-token events) is driven closed-loop with as
many users as the batch size, every request generating a fixed number of tokens; the bare
loop runs prefill + greedy decode for the same batch directly on the same model in this
process, with the engine idle. Ratio = engine / bare (goal >= 0.9).

    python bench/engine_overhead.py [--batch 16] [--max-tokens 64] [--duration 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from engine_common import engine_process  # noqa: E402
from engine_common import put_config  # noqa: E402

from engine.config import available_cores  # noqa: E402
from engine.executors import intra_op_threads  # noqa: E402
from engine.model import MODEL_SPECS  # noqa: E402
from engine.model import KVCache  # noqa: E402
from engine.model import build_model  # noqa: E402
from engine.precision import cache_dtype  # noqa: E402
from engine.precision import prepare_model  # noqa: E402
from engine.tokenizer import encode  # noqa: E402
from tuner.loadgen import LoadSpec  # noqa: E402
from tuner.loadgen import RequestShape  # noqa: E402
from tuner.loadgen import run_load_sync  # noqa: E402


def bare_tokens_per_s(
    model_name: str,
    precision: str,
    batch: int,
    prompt_len: int,
    max_tokens: int,
    seconds: float,
    threads: int,
) -> float:
    spec = MODEL_SPECS[model_name]
    torch.set_num_threads(threads)
    model = prepare_model(build_model(spec, 0), precision, torch.device("cpu"))  # type: ignore[arg-type]
    cache = KVCache(spec, batch, cache_dtype(precision), torch.device("cpu"))  # type: ignore[arg-type]
    prompt = encode("a" * (prompt_len - 1))
    ids = torch.tensor([prompt] * batch)
    lengths = torch.full((batch,), len(prompt))
    tokens = 0
    start = time.perf_counter()
    with torch.inference_mode():
        while time.perf_counter() - start < seconds:
            last = torch.argmax(model.prefill(ids, lengths, cache, 0), dim=-1)
            positions = lengths.clone()
            tokens += batch
            for _ in range(max_tokens - 1):
                last = torch.argmax(model.decode(last, positions, cache), dim=-1)
                positions += 1
                tokens += batch
    return tokens / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="small")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--prompt-len", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--max-queue-delay-ms", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    engine_runs: list[float] = []
    bare_runs: list[float] = []
    with engine_process(args.model, batch_size=args.batch, precision=args.precision) as url:
        put_config(url, {"max_queue_delay_ms": args.max_queue_delay_ms})
        shapes = (RequestShape(args.prompt_len - 1, args.max_tokens),)  # +BOS = prompt_len
        common = {"mode": "closed", "concurrency": args.batch, "shapes": shapes,
                  "extra_body": {"ignore_eos": True}, "timeout_s": 120}  # fmt: skip
        run_load_sync(LoadSpec(url, args.model, duration_s=3, **common))  # type: ignore[arg-type]
        # Interleaved rounds, median of each: the machine's background load drifts.
        for _ in range(args.rounds):
            result = run_load_sync(LoadSpec(url, args.model, duration_s=args.duration, **common))  # type: ignore[arg-type]
            assert result.failed == 0 and result.rejected == 0, result.summary()
            engine_runs.append(result.output_tokens_per_s)
            bare_runs.append(
                bare_tokens_per_s(
                    args.model,
                    args.precision,
                    args.batch,
                    args.prompt_len,
                    args.max_tokens,
                    args.duration,
                    intra_op_threads(available_cores(), 1),
                )
            )
    engine_tps = statistics.median(engine_runs)
    bare_tps = statistics.median(bare_runs)
    print(
        f"model={args.model} precision={args.precision} batch={args.batch} "
        f"max_queue_delay_ms={args.max_queue_delay_ms} prompt={args.prompt_len} "
        f"max_tokens={args.max_tokens} rounds={args.rounds}"
    )
    print(f"engine tokens/s per round: {', '.join(f'{v:.0f}' for v in engine_runs)}")
    print(f"bare   tokens/s per round: {', '.join(f'{v:.0f}' for v in bare_runs)}")
    print(f"median engine: {engine_tps:.0f} tokens/s, median bare: {bare_tps:.0f} tokens/s")
    print(f"ratio engine/bare: {engine_tps / bare_tps:.3f}")


if __name__ == "__main__":
    main()
