"""Cross-check of ``cplane loadtest``'s figures against Locust, the field's load tool: at
each concurrency step, the load test's step measurement (tuner's load generator, warm-up,
windows until stable) and a headless Locust run with as many users for as long, against
the same engine and request. Goal: requests/s and p99 within 10 %.

    python -m bench.loadtest.locust_crosscheck [--steps 1,4,16] [--duration 20] [--rounds 2]

Locust runs as its own process (it monkey-patches the standard library with gevent);
its p99 comes from its own histogram, which rounds latencies above 100 ms to 10 ms.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.engine_common import engine_process
from controlplane.settings import TunerSettings
from tuner.loadgen import LoadSpec
from tuner.loadgen import RequestShape
from tuner.loadtest import measure_step

HERE = Path(__file__).resolve().parent


def _locust(url: str, users: int, duration_s: int, model: str, out: Path) -> tuple[float, float]:
    exe = shutil.which("locust") or str(Path(sys.executable).parent / "locust")
    env = {**os.environ, "XCHECK_MODEL": model}
    prefix = out / f"locust-{users}"
    cmd = [exe, "-f", str(HERE / "locustfile.py"), "--headless", "-u", str(users),
           "-r", str(users), "-t", f"{duration_s}s", "--host", url, "--csv", str(prefix),
           "--only-summary", "--loglevel", "WARNING"]  # fmt: skip
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(f"{prefix}_stats.csv", newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["Name"] == "Aggregated")
    return float(row["Requests/s"]), float(row["99%"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", default="1,4,16")
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    steps = [int(s) for s in args.steps.split(",")]
    # Fixed windows as long as Locust's run: the comparison is of the two tools, not of the
    # stability rule.
    policy = TunerSettings(warmup_s=2.0, window_s=args.duration / 2, min_windows=2,
                           max_windows=2, tolerance=1.0)  # fmt: skip
    print(f"{'users':>5} {'ours rps':>9} {'locust rps':>10} {'diff':>6} "
          f"{'ours p99':>9} {'locust p99':>10} {'diff':>6}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, engine_process(args.model,
                                                              batch_size=args.batch) as url:  # fmt: skip
        for index, users in enumerate(steps):

            def spec_for(duration_s: float, seed: int, users: int = users) -> LoadSpec:
                return LoadSpec(url, args.model, mode="closed", concurrency=users,
                                duration_s=duration_s, shapes=(RequestShape(16, 8),),
                                stream=True, timeout_s=60, seed=seed,
                                extra_body={"ignore_eos": True})  # fmt: skip

            # Alternate the two tools and compare medians: the host's background load drifts.
            ours_rps: list[float] = []
            ours_p99: list[float] = []
            locust_rps: list[float] = []
            locust_p99: list[float] = []
            for _ in range(args.rounds):
                ours = measure_step(index, users, spec_for, slos=(), policy=policy)
                ours_rps.append(ours.throughput_rps)
                ours_p99.append(ours.p99_ms or 0.0)
                rps, p99 = _locust(url, users, args.duration, args.model, Path(tmp))
                locust_rps.append(rps)
                locust_p99.append(p99)
            a_rps, b_rps = statistics.median(ours_rps), statistics.median(locust_rps)
            a_p99, b_p99 = statistics.median(ours_p99), statistics.median(locust_p99)
            print(f"{users:>5} {a_rps:>9.1f} {b_rps:>10.1f} {b_rps / a_rps - 1:>+6.1%} "
                  f"{a_p99:>9.0f} {b_p99:>10.0f} {b_p99 / a_p99 - 1 if a_p99 else 0:>+6.1%}"
                  f"   rounds: ours {ours_rps} locust {locust_rps}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
