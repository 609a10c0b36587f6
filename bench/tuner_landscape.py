"""Record the tuner's landscape once from the live reference engine, for replay benchmarks.

Every grid point (batch x streams x precision, queue delay 0 = 112 points on a 2-core host)
is applied through the engine's admin API, warmed up (discarded), then measured in several
closed-loop windows. The file keeps, per point, the mean and the spread of goodput (requests
per second finishing within the SLO), throughput and p99, which is what
``bench/tuner_efficiency.py`` samples from. Recording is the only live part of the replay
figures; the replay then costs milliseconds per "trial" and can be repeated hundreds of
times. ``bench/tuner_efficiency.py --live`` records the grid the same way, in its own run.

    python bench/tuner_landscape.py [--windows 3] [--window-s 1.5] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine_common import engine_process  # noqa: E402
from engine_common import put_config  # noqa: E402

from tuner.loadgen import LoadSpec  # noqa: E402
from tuner.loadgen import RequestShape  # noqa: E402
from tuner.loadgen import run_load_sync  # noqa: E402

GRID: dict[str, list[Any]] = {
    "max_batch_size": [1, 2, 4, 8, 16, 32, 64],
    "streams": [1, 2, 3, 4],
    "precision": ["fp32", "bf16", "fp16", "int8"],
}
OUT = Path(__file__).resolve().parent / "tuner_landscape.json"


@dataclass(frozen=True)
class Probe:
    """How one config is measured: put it, warm up (discarded), then ``windows``
    closed-loop windows of short requests; goodput counts requests within ``slo_s``."""

    url: str
    model: str = "tiny"
    concurrency: int = 16
    windows: int = 3
    window_s: float = 1.5
    warmup_s: float = 0.5
    slo_s: float = 0.3

    def window(self, seconds: float) -> dict[str, float]:
        spec = LoadSpec(self.url, self.model, mode="closed", concurrency=self.concurrency,
                        duration_s=seconds, shapes=(RequestShape(prompt_len=16, max_tokens=8),),
                        extra_body={"ignore_eos": True})  # fmt: skip
        r = run_load_sync(spec)
        return {
            "goodput": r.goodput(self.slo_s),
            "throughput": r.achieved_rps,
            "p99_s": r.p99 if r.p99 is not None else 60.0,
        }

    def point(self, config: dict[str, Any]) -> dict[str, Any]:
        """One grid point: mean and spread of each figure over the windows."""
        put_config(self.url, config)
        self.window(self.warmup_s)
        windows = [self.window(self.window_s) for _ in range(self.windows)]
        point: dict[str, Any] = {"config": config}
        for key in ("goodput", "throughput", "p99_s"):
            values = [w[key] for w in windows]
            point[key] = {
                "mean": statistics.fmean(values),
                "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            }
        return point

    def record(self, *, echo: bool = True) -> dict[str, Any]:
        """The whole grid, in a fixed order, with its conditions."""
        started = time.monotonic()
        points = []
        for batch, streams, precision in itertools.product(*GRID.values()):
            config = {"max_batch_size": batch, "streams": streams, "precision": precision}
            points.append(self.point(config))
            if echo:
                print(json.dumps(points[-1]), flush=True)
        meta = {
            "model": self.model,
            "load": f"closed, concurrency {self.concurrency}, prompt 16, output 8 tokens",
            "slo": f"p99_ms<={self.slo_s * 1000:g}",
            "windows": self.windows,
            "window_s": self.window_s,
            "recorded_s": round(time.monotonic() - started, 1),
            "load_average": os.getloadavg()[0],
            "cores": os.cpu_count(),
        }
        return {"meta": meta, "points": points}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--window-s", type=float, default=1.5)
    parser.add_argument("--warmup-s", type=float, default=0.5)
    parser.add_argument("--slo-s", type=float, default=0.3, help="p99 latency SLO, seconds")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with engine_process(args.model, batch_size=1) as url:
        probe = Probe(url, args.model, args.concurrency, args.windows, args.window_s,
                      args.warmup_s, args.slo_s)  # fmt: skip
        recording = probe.record()
    args.out.write_text(json.dumps(recording, indent=1) + "\n")
    print(
        f"{len(recording['points'])} points in {recording['meta']['recorded_s']} s -> {args.out}"
    )


if __name__ == "__main__":
    main()
