"""Probe cost per trial, and its effect on the latency the guard measures beside it.

Records the shipped 32-prompt probe set, times one check on an idle engine, then runs
closed-loop load in alternating blocks with the probe off and on (on: checks back to back
for the whole block, the worst case; the guard runs one per bake) and prints p50 / p99 of
the load's requests side by side.

    python bench/quality/probe_cost.py [--model small] [--blocks 3] [--block-s 10]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

from _common import engine
from _common import load_avg

from controlplane.guard import quality as probe
from tuner.loadgen import LoadSpec
from tuner.loadgen import RequestShape
from tuner.loadgen import run_load_sync


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="small")
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--block-s", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    print(f"load average before: {load_avg()}")
    with engine(args.model) as adapter:
        started = time.monotonic()
        reference = probe.record(adapter, probe.default_probe_set())
        print(f"record 32 prompts: {time.monotonic() - started:.2f} s")
        idle = [probe.check(adapter, reference).duration_s for _ in range(3)]
        print(f"check 32 prompts, idle engine: {statistics.median(idle):.2f} s (median of 3)")
        spec = LoadSpec(
            base_url=adapter.target.url,
            model=args.model,
            mode="closed",
            concurrency=args.concurrency,
            duration_s=args.block_s,
            shapes=(RequestShape(prompt_len=32, max_tokens=16),),
            extra_body={"ignore_eos": True},
        )
        p99 = {"off": [], "on": []}
        p50 = {"off": [], "on": []}
        durations: list[float] = []
        for _ in range(args.blocks):
            for mode in ("off", "on"):
                stop = threading.Event()

                def loop(stop: threading.Event = stop) -> None:
                    while not stop.is_set():
                        durations.append(probe.check(adapter, reference, stop=stop).duration_s)

                worker = threading.Thread(target=loop) if mode == "on" else None
                if worker is not None:
                    worker.start()
                result = run_load_sync(spec)
                stop.set()
                if worker is not None:
                    worker.join()
                p99[mode].append((result.p99 or 0) * 1000)
                p50[mode].append((result.p50 or 0) * 1000)
        for mode in ("off", "on"):
            print(
                f"probe {mode:3}: p50 {statistics.median(p50[mode]):7.1f} ms  "
                f"p99 {statistics.median(p99[mode]):7.1f} ms  (median of {args.blocks} blocks: "
                f"{', '.join(f'{v:.1f}' for v in p99[mode])})"
            )
        if durations:
            print(f"check 32 prompts under load: {statistics.median(durations):.2f} s (median)")
    print(f"load average after: {load_avg()}")


if __name__ == "__main__":
    main()
