"""Cross-check: Debian's ``wrk`` vs ``tuner/loadgen.py``, closed-loop at the same concurrency
against the same engine config and the same request body. Goal: within 10 %.

    python bench/engine_wrk.py [--connections 8] [--duration 15] [--rounds 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine_common import engine_process  # noqa: E402

from tuner.loadgen import LoadSpec  # noqa: E402
from tuner.loadgen import RequestShape  # noqa: E402
from tuner.loadgen import _prompt  # noqa: E402
from tuner.loadgen import run_load_sync  # noqa: E402

LUA = Path(__file__).resolve().parent / "engine_wrk_post.lua"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="small")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit("wrk is not installed (apt-get install -y wrk)")
    body = {"model": args.model, "prompt": _prompt(32, 0), "max_tokens": args.max_tokens,
            "stream": False, "ignore_eos": True}  # fmt: skip
    with engine_process(args.model, batch_size=args.batch) as url:
        spec = LoadSpec(url, args.model, mode="closed", concurrency=args.connections,
                        duration_s=args.duration, shapes=(RequestShape(32, args.max_tokens),),
                        extra_body={"ignore_eos": True}, timeout_s=60)  # fmt: skip
        run_load_sync(dataclasses.replace(spec, duration_s=3.0))  # warm-up
        cmd = [wrk, "-t1", f"-c{args.connections}", f"-d{args.duration}s", "--latency",
               "-s", str(LUA), url + "/v1/completions"]  # fmt: skip
        # Alternate the two tools and compare medians: the host's background load drifts.
        loadgen_rps: list[float] = []
        wrk_rps: list[float] = []
        out = ""
        for _ in range(args.rounds):
            result = run_load_sync(spec)
            assert result.failed == 0, result.summary()
            loadgen_rps.append(result.achieved_rps)
            out = subprocess.run(
                cmd,
                env={**os.environ, "WRK_BODY": json.dumps(body)},
                capture_output=True,
                text=True,
                check=True,
                timeout=args.duration + 60,
            ).stdout
            match = re.search(r"Requests/sec:\s+([\d.]+)", out)
            assert match, out
            wrk_rps.append(float(match.group(1)))
    lg = statistics.median(loadgen_rps)
    wr = statistics.median(wrk_rps)
    print(f"config: model={args.model} batch={args.batch} concurrency={args.connections} "
          f"max_tokens={args.max_tokens} duration={args.duration}s rounds={args.rounds}")  # fmt: skip
    print(f"loadgen req/s per round: {', '.join(f'{v:.2f}' for v in loadgen_rps)}")
    print(f"wrk     req/s per round: {', '.join(f'{v:.2f}' for v in wrk_rps)}")
    print(
        f"median loadgen {lg:.2f}, median wrk {wr:.2f}, difference {abs(lg - wr) / wr * 100:.1f} %"
    )
    print(f"load average now: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print("last wrk output:")
    print(out)


if __name__ == "__main__":
    main()
