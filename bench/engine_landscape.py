"""Landscape: requests/s and p50/p99 latency over batch size x streams x precision.

One engine process (model ``small``) is reconfigured through the admin API for every grid
point, then driven with Poisson arrivals at a fixed offered load. Goodput counts requests
that finished within the p99 SLO; the best grid point is the tuner's target.

    python bench/engine_landscape.py [--quick] [--rate 15] [--duration 5] [--slo 1.0]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine_common import engine_process  # noqa: E402
from engine_common import ms  # noqa: E402
from engine_common import put_config  # noqa: E402

from tuner.loadgen import LoadSpec  # noqa: E402
from tuner.loadgen import RequestShape  # noqa: E402
from tuner.loadgen import run_load_sync  # noqa: E402

FULL = {
    "max_batch_size": [1, 2, 4, 8, 16, 32],
    "streams": [1, 2, 4],
    "precision": ["fp32", "bf16", "int8"],
}
QUICK = {"max_batch_size": [1, 4, 16], "streams": [1, 2, 4], "precision": ["fp32", "bf16"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--model", default="small")
    parser.add_argument("--rate", type=float, default=15.0, help="offered load, requests/s")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per grid point")
    parser.add_argument("--slo", type=float, default=1.0, help="p99 latency SLO, seconds")
    parser.add_argument("--max-queue", type=int, default=16, help="engine admission bound")
    parser.add_argument("--timeout", type=float, default=4.0, help="client timeout, seconds")
    args = parser.parse_args()
    grid = QUICK if args.quick else FULL
    shapes = (RequestShape(prompt_len=32, max_tokens=16),)
    rows = []
    started = time.monotonic()
    with engine_process(args.model, max_queue=args.max_queue) as url:
        for batch, streams, precision in itertools.product(*grid.values()):
            config = {"max_batch_size": batch, "streams": streams, "precision": precision}
            put_config(url, config)
            warm = LoadSpec(url, args.model, mode="constant", rate=args.rate, duration_s=1.0,
                            shapes=shapes, stream=True, timeout_s=args.timeout,
                            extra_body={"ignore_eos": True})  # fmt: skip
            run_load_sync(warm)
            # Streaming, so that a request abandoned at the timeout is also cancelled in the
            # engine and a hopeless grid point cannot spill work into the next one.
            spec = LoadSpec(url, args.model, mode="poisson", rate=args.rate, stream=True,
                            duration_s=args.duration, shapes=shapes, seed=42,
                            timeout_s=args.timeout, extra_body={"ignore_eos": True})  # fmt: skip
            result = run_load_sync(spec)
            goodput = result.goodput(args.slo)
            meets = (
                result.p99 is not None
                and result.p99 <= args.slo
                and result.failed == 0
                and result.rejected == 0
            )
            rows.append((batch, streams, precision, result, goodput, meets))
            print(
                f"batch={batch:<3} streams={streams} precision={precision:<5} "
                f"rps={result.achieved_rps:6.2f} p50_ms={ms(result.p50):>6} "
                f"p99_ms={ms(result.p99):>6} ttft_p99_ms={ms(result.ttft_p99):>6} "
                f"goodput={goodput:6.2f} "
                f"rejected={result.rejected} failed={result.failed} slo_ok={meets}",
                flush=True,
            )
    best = max(rows, key=lambda r: (r[5], r[4], -(r[3].p99 or 1e9)))
    b, s, p, result, goodput, meets = best
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"\noffered load {args.rate} req/s, SLO p99 <= {args.slo} s, "
          f"{len(rows)} points in {time.monotonic() - started:.0f} s")  # fmt: skip
    print(f"best: batch={b} streams={s} precision={p} goodput={goodput:.2f} req/s "
          f"p99_ms={ms(result.p99)} meets_slo={meets}")  # fmt: skip


if __name__ == "__main__":
    main()
