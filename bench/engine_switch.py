"""Live switch: 20 config changes under steady open-loop load.

Reports failed requests (goal 0) and the p99 latency of requests that were in flight in the
2 s around a switch (1 s either side of the PUT) against the p99 of all other requests.

    python bench/engine_switch.py [--rate 10] [--switches 20] [--interval 5]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
from engine_common import ADMIN_TOKEN  # noqa: E402
from engine_common import engine_process  # noqa: E402
from engine_common import ms  # noqa: E402
from engine_common import put_config  # noqa: E402

from tuner.loadgen import LoadSpec  # noqa: E402
from tuner.loadgen import RequestShape  # noqa: E402
from tuner.loadgen import percentile  # noqa: E402
from tuner.loadgen import run_load  # noqa: E402

# Configs of similar speed, so that the comparison shows the cost of switching rather than
# the difference between configs (precision switches are covered by the tests).
CONFIGS: list[dict[str, Any]] = [
    {"max_batch_size": 16, "streams": 2, "precision": "fp32"},
    {"max_batch_size": 8, "streams": 2, "precision": "fp32"},
    {"max_batch_size": 16, "streams": 1, "precision": "fp32"},
    {"max_batch_size": 32, "streams": 2, "precision": "fp32"},
]


async def scenario(url: str, model: str, rate: float, switches: int, interval: float) -> None:
    duration = interval * (switches + 2)
    spec = LoadSpec(url, model, mode="poisson", rate=rate, duration_s=duration, seed=7,
                    shapes=(RequestShape(32, 16),), extra_body={"ignore_eos": True},
                    timeout_s=60)  # fmt: skip
    load = asyncio.create_task(run_load(spec))
    t0 = time.perf_counter()
    switch_times: list[float] = []
    put_latencies: list[float] = []
    async with httpx.AsyncClient(
        base_url=url, timeout=120, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ) as admin:
        await asyncio.sleep(interval)
        for i in range(switches):
            start = time.perf_counter()
            response = await admin.put("/admin/config", json=CONFIGS[(i + 1) % len(CONFIGS)])
            response.raise_for_status()
            put_latencies.append(time.perf_counter() - start)
            switch_times.append(start - t0)
            await asyncio.sleep(max(0.0, interval - put_latencies[-1]))
    result = await load
    near, far = [], []
    for record in result.records:
        if record.status != "ok":
            continue
        begin, end = record.start_s, record.start_s + record.latency_s
        close = any(begin <= t + 1.0 and end >= t - 1.0 for t in switch_times)
        (near if close else far).append(record.latency_s)
    print(f"offered {rate} req/s for {duration:.0f} s, {switches} switches every {interval} s")
    print(f"requests: sent={result.sent} ok={result.ok} failed={result.failed} "
          f"rejected={result.rejected}")  # fmt: skip
    errors = collections.Counter(r.error for r in result.records if r.status == "failed")
    if errors:
        print(f"failures by cause: {dict(errors)}")
    print(f"load average now: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"PUT latency: p50_ms={ms(percentile(put_latencies, 50))} "
          f"max_ms={ms(max(put_latencies))}")  # fmt: skip
    print(f"p99 around switches (+-1 s, n={len(near)}): {ms(percentile(near, 99))} ms")
    print(f"p99 steady state (n={len(far)}): {ms(percentile(far, 99))} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="small")
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--switches", type=int, default=20)
    parser.add_argument("--interval", type=float, default=5.0)
    args = parser.parse_args()
    with engine_process(args.model) as url:
        put_config(url, CONFIGS[0])
        asyncio.run(scenario(url, args.model, args.rate, args.switches, args.interval))


if __name__ == "__main__":
    main()
