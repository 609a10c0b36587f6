"""Model-only step times: decode step and prefill per precision, batch and thread count.

No server, no HTTP: this isolates the compute trade-offs (batching amortises weight reads;
bf16/fp16/int8 kernels on this CPU) that the serving landscape is built from.

    python bench/engine_steps.py [--model small] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from engine.model import MODEL_SPECS  # noqa: E402
from engine.model import KVCache  # noqa: E402
from engine.model import build_model  # noqa: E402
from engine.precision import cache_dtype  # noqa: E402
from engine.precision import prepare_model  # noqa: E402
from engine.precision import supported_precisions  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="small")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8, 16, 32])
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    cpu = torch.device("cpu")
    spec = MODEL_SPECS[args.model]
    base = build_model(spec, 0)
    prompt_len = 33
    print("threads precision batch decode_step_ms decode_tokens_per_s prefill_ms")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for precision in supported_precisions(cpu):
            model = prepare_model(base, precision, cpu)
            for batch in args.batches:
                cache = KVCache(spec, batch, cache_dtype(precision), cpu)
                ids = torch.ones((batch, prompt_len), dtype=torch.long)
                lengths = torch.full((batch,), prompt_len)
                with torch.inference_mode():
                    start = time.perf_counter()
                    model.prefill(ids, lengths, cache, 0)
                    prefill = time.perf_counter() - start
                    tokens = torch.ones(batch, dtype=torch.long)
                    model.decode(tokens, lengths, cache)  # warm-up
                    start = time.perf_counter()
                    for i in range(args.steps):
                        model.decode(tokens, lengths + i, cache)
                    step = (time.perf_counter() - start) / args.steps
                print(
                    f"{threads:>7} {precision:>9} {batch:>5} {step * 1e3:>14.1f} "
                    f"{batch / step:>19.0f} {prefill * 1e3:>10.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
