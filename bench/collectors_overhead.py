"""CPU cost of scraping 50 engines every second: the collectors' scraper in this process
against 50 HTTP endpoints served by a separate process (each answers a captured reference
engine exposition), measured as this process's CPU time over the run.

    python bench/collectors_overhead.py [--engines 50] [--interval 1] [--seconds 30]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import threading
import time
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from collectors import CollectorHealth
from collectors import EngineScraper
from controlplane.domain import EngineTarget

BODY = (
    Path(__file__).resolve().parent.parent / "tests/fixtures/collectors/reference/metrics.txt"
).read_bytes()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: Any) -> None:
        pass


def _serve(ports: list[int], ready: Any) -> None:
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Handler) for _ in ports]
    for i, server in enumerate(servers):
        ports[i] = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
    ready.send(list(ports))
    threading.Event().wait()


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--engines", type=int, default=50)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=([0] * args.engines, child), daemon=True)
    server.start()
    ports: list[int] = parent.recv()
    offered = [0]

    def offer(samples: Any) -> None:
        offered[0] += len(samples)

    scraper = EngineScraper(
        offer, health=CollectorHealth(CollectorRegistry()), interval_s=args.interval,
        timeout_s=2.0, max_workers=8,
    )  # fmt: skip
    scraper.start()
    scraper.set_targets(
        [EngineTarget(f"e{i}", "reference", f"http://127.0.0.1:{p}") for i, p in enumerate(ports)]
    )
    time.sleep(2 * args.interval)  # connections warm, first round done
    cpu0, wall0, samples0 = cpu_s(), time.monotonic(), offered[0]
    time.sleep(args.seconds)
    cpu, wall, samples = cpu_s() - cpu0, time.monotonic() - wall0, offered[0] - samples0
    scraper.close()
    server.terminate()
    cores = os.cpu_count() or 1
    print(
        f"{args.engines} engines every {args.interval:g} s for {wall:.0f} s; body {len(BODY)} bytes"
    )
    print(f"samples/s parsed: {samples / wall:,.0f}")
    print(
        f"scraper CPU: {cpu / wall * 100:.1f} % of one core ({cpu / wall / cores * 100:.1f} % of {cores} cores)"
    )
    print(f"per scrape: {cpu / max(1, wall / args.interval * args.engines) * 1000:.2f} ms CPU")


if __name__ == "__main__":
    main()
