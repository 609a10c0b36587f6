"""Switch wall time and failed requests over N config changes under load.

process: the reference engine as a command-line process behind HAProxy (kind=process);
each switch starts a new process, waits for health and an inference, moves traffic, drains
and stops the old one. triton: the tiny python-backend model on a real Triton (CPU); each
switch is a repository-API reload with a config override.

    .venv/bin/python bench/engines/switch.py [--kind process|triton] [--switches 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from load import BackgroundLoad
from triton_server import triton

from controlplane.domain import EngineTarget
from controlplane.engines.process import ProcessSpec
from controlplane.engines.process import Supervisor
from controlplane.engines.triton import TritonAdapter

ENGINE_BIN = str(Path(sys.executable).parent / "cplane-engine")
INFER = {"inputs": [{"name": "INPUT0", "shape": [1, 16], "datatype": "FP32", "data": [0.5] * 16}]}


def _report(kind: str, walls: list[float], sent: int, failed: int) -> None:
    walls_sorted = sorted(walls)
    p95 = walls_sorted[max(0, round(0.95 * len(walls)) - 1)]
    print(
        f"{kind}: {len(walls)} switches, wall p50 {statistics.median(walls):.2f} s, "
        f"p95 {p95:.2f} s, max {max(walls):.2f} s; requests {sent}, failed {failed}"
    )


def bench_process(switches: int, rate: float) -> None:
    spec = ProcessSpec(
        name="bench", preset="reference", command=(ENGINE_BIN, "serve", "--model", "tiny")
    )
    sup = Supervisor(spec, Path(tempfile.mkdtemp(prefix="bench-proc-")))
    sup.start()
    try:
        load = BackgroundLoad(sup.url, rate=rate)
        walls = []
        for i in range(switches):
            started = time.monotonic()
            sup.apply({"max_batch_size": 4 if i % 2 == 0 else 8})
            walls.append(time.monotonic() - started)
        load.stop()
        _report("process", walls, load.sent, load.failed)
    finally:
        sup.stop()


def bench_triton(switches: int, rate: float) -> None:
    with triton() as (url, metrics_url):
        adapter = TritonAdapter(EngineTarget("bench", "triton", url, metrics_url))
        base = url.split("/v2/", 1)[0]
        stop = threading.Event()
        codes: list[int] = []

        def traffic() -> None:
            with httpx.Client(base_url=base, timeout=30) as client:
                while not stop.is_set():
                    codes.append(client.post("/v2/models/tiny/infer", json=INFER).status_code)
                    time.sleep(1.0 / rate)

        worker = threading.Thread(target=traffic)
        worker.start()
        walls = []
        try:
            for i in range(switches):
                started = time.monotonic()
                adapter.apply({"max_batch_size": 4 if i % 2 == 0 else 8})
                walls.append(time.monotonic() - started)
        finally:
            stop.set()
            worker.join()
            adapter.close()
        _report("triton", walls, len(codes), sum(1 for c in codes if c != 200))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", choices=("process", "triton"), default="process")
    parser.add_argument("--switches", type=int, default=20)
    parser.add_argument("--rate", type=float, default=10.0, help="requests per second")
    args = parser.parse_args()
    if args.kind == "process":
        bench_process(args.switches, args.rate)
    else:
        bench_triton(args.switches, args.rate)


if __name__ == "__main__":
    main()
