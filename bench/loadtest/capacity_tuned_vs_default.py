"""Capacity tuned vs default on the reference engine: ``cplane tune --objective capacity``
from a poor default (batch 1) over the batch-size knob, as a user runs it (the installed
``cplane`` against a fresh SQLite store), and the headline ratio with the confidence
intervals of the re-measured best and default.

    python -m bench.loadtest.capacity_tuned_vs_default [--trials 6] [--repeats 3] [--model tiny]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.engine_common import ADMIN_TOKEN
from bench.engine_common import engine_process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--slo", default="p99_ms<=500")
    parser.add_argument("--load", default="rate=10,shapes=16x32")
    args = parser.parse_args()
    cplane = shutil.which("cplane") or str(Path(sys.executable).parent / "cplane")
    with tempfile.TemporaryDirectory() as tmp, engine_process(args.model, batch_size=1) as url:
        env = {**os.environ, "CP_DATA_DIR": tmp, "CP_TUNER__REPEATS": str(args.repeats)}
        env.pop("CP_DATABASE_URL", None)

        def run(*argv: str) -> str:
            done = subprocess.run([cplane, *argv], env=env, capture_output=True, text=True)
            if done.returncode not in (0, 1):
                sys.exit(f"cplane {' '.join(argv)}: {done.stderr.strip()}")
            return done.stdout

        run("db", "upgrade")
        run("engine", "add", "ref", "--url", url, "--admin-token", ADMIN_TOKEN)
        run("slo", "set", "ref", args.slo)
        started = time.monotonic()
        out = run("tune", "ref", "--objective", "capacity", "--slo", args.slo, "--load",
                  args.load, "--knob", "max_batch_size", "--trials", str(args.trials),
                  "--seed", "1", "--json")  # fmt: skip
        took = time.monotonic() - started
    data = json.loads(out)
    result = data["result"]
    print(f"state {data['state']}; note: {result.get('note')}; error: {result.get('error')}")
    for trial in result.get("trials", []):
        print(f"  trial {trial['number']} {trial['kind']} {trial['params']} {trial['outcome']} "
              f"{trial['values']} {trial.get('error') or ''}")  # fmt: skip
    remeasured = result.get("remeasured") or {}
    print(f"run took {took:.0f} s; best {result.get('best', {}).get('params')}")
    for label in ("default", "best"):
        r = remeasured.get(label)
        if r:
            ci = r.get("ci")
            span = f" (95% CI {ci[0]:.1f}..{ci[1]:.1f})" if ci else ""
            print(f"{label}: {r['mean']:.1f} req/s{span}, n={r['n']}")
    print(result.get("headline"))
    print(f"significance: {result.get('significance')}")
    print(f"applied: {result.get('applied')}")


if __name__ == "__main__":
    main()
