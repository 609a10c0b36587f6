"""Rule evaluation cost on 1,000 simulated engines, measured by Prometheus itself.

A stand-in exporter serves, in one target with ``honor_labels``, the series 1,000 reference
engines would expose (request counters by finish reason, failure counters, e2e and TTFT
histograms with the engine's 40 buckets, queue gauge, engine process RSS), counting up at
every scrape. A real ``prometheus`` evaluates the shipped rules and the generated SLO rules
of 1,000 engines (one ``p99_ms<=300`` SLO each) at the shipped interval (15 s). After the run the script prints
``prometheus_rule_group_last_duration_seconds`` per group (the SLO groups as max and mean),
the goal being < 1 s per group.

``.venv/bin/python bench/prometheus_rules.py [--engines 1000] [--seconds 90]``
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from controlplane.domain import parse_slo
from controlplane.prometheus.slo_rules import SloTarget
from controlplane.prometheus.slo_rules import slo_rules_text

ROOT = Path(__file__).resolve().parents[1]
BUCKETS = [line.split('le="')[1].split('"')[0] for line in (
    ROOT / "tests/fixtures/collectors/reference/metrics.txt"
).read_text().splitlines() if line.startswith("vllm:e2e_request_latency_seconds_bucket")]  # fmt: skip


class Fleet:
    """Cumulative counters of ``n`` engines, advanced at every scrape."""

    def __init__(self, n: int) -> None:
        self.names = [f"e{i:04d}" for i in range(n)]
        self.count = 0.0
        self.lock = threading.Lock()

    def exposition(self) -> bytes:
        with self.lock:
            self.count += 50
            c = self.count
        out: list[str] = []
        for name in self.names:
            lab = f'engine="{name}",kind="reference",job="cplane-engines",model_name="tiny"'
            out.append(f'vllm:request_success_total{{{lab},finished_reason="length"}} {c}')
            out.append(f'vllm:request_success_total{{{lab},finished_reason="error"}} {c / 100}')
            out.append(f'engine_request_failures_total{{{lab},reason="rejected"}} 0')
            out.append(f"vllm:num_requests_waiting{{{lab}}} {random.randint(0, 5)}")
            for family in ("vllm:e2e_request_latency_seconds", "vllm:time_to_first_token_seconds"):
                for i, le in enumerate(BUCKETS):
                    share = min(1.0, (i + 1) / 20)
                    out.append(f'{family}_bucket{{{lab},le="{le}"}} {c * share}')
                out.append(f"{family}_count{{{lab}}} {c}")
                out.append(f"{family}_sum{{{lab}}} {c * 0.05}")
            out.append(
                f'host_engine_process_resident_memory_bytes{{engine="{name}",job="cplane"}} '
                f"{1e9 + c}"
            )
        return ("\n".join(out) + "\n").encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(fleet: Fleet) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = fleet.exposition()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engines", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument(
        "--slo-engines", type=int, default=None, help="engines with an SLO; default: all"
    )
    parser.add_argument("--interval", default="15s", help="scrape and evaluation interval")
    args = parser.parse_args()
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        sys.exit("prometheus not installed")
    fleet = Fleet(args.engines)
    server = serve(fleet)
    work = Path(tempfile.mkdtemp(prefix="bench-prom-"))
    slo = parse_slo("p99_ms<=300")
    (work / "slo.rules.yml").write_text(
        slo_rules_text(SloTarget(n, "reference", slo) for n in fleet.names[: args.slo_engines])
    )
    port = server.server_address[1]
    prom_port = free_port()
    (work / "prometheus.yml").write_text(
        f"""global:
  scrape_interval: {args.interval}
  scrape_timeout: {args.interval}
  evaluation_interval: {args.interval}
rule_files:
  - {ROOT}/alerts/*.rules.yml
  - {work}/slo.rules.yml
scrape_configs:
  - job_name: fleet
    honor_labels: true
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""
    )
    url = f"http://127.0.0.1:{prom_port}"
    log = (work / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            prometheus,
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        time.sleep(args.seconds)
        # Prometheus' own /metrics (it does not scrape itself here).
        text = httpx.get(f"{url}/metrics", timeout=30).text
        rules = httpx.get(f"{url}/api/v1/rules", timeout=30).json()["data"]["groups"]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        server.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    shipped: dict[str, float] = {}
    slo_groups: list[float] = []
    head = cpu = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "prometheus_tsdb_head_series":
                head = sample.value
            if sample.name == "process_cpu_seconds_total":
                cpu = sample.value
    for sample in (
        s
        for f in text_string_to_metric_families(text)
        if f.name == "prometheus_rule_group_last_duration_seconds"
        for s in f.samples
    ):
        group = sample.labels["rule_group"].split(";")[-1]
        value = sample.value
        if group.startswith("cplane-slo-"):
            slo_groups.append(value)
        else:
            shipped[group] = value
    print(
        f"engines: {args.engines}, head series: {head:.0f}, run: {args.seconds:g} s, "
        f"interval {args.interval}, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"Prometheus CPU: {cpu:.1f} s in {args.seconds:g} s (scrapes, rules and storage)")
    print(f"{'group':<24} {'last duration (s)':>18}")
    for group, value in sorted(shipped.items()):
        print(f"{group:<24} {value:>18.4f}")
    slowest = sorted(
        (
            (r.get("evaluationTime", 0.0), g["name"], r.get("name", ""))
            for g in rules
            if not g["name"].startswith("cplane-slo-")
            for r in g["rules"]
        ),
        reverse=True,
    )[:3]
    for seconds, group, name in slowest:
        print(f"  slowest rule: {group} {name} {seconds:.4f} s")
    if slo_groups:
        print(
            f"{'cplane-slo-* (' + str(len(slo_groups)) + ')':<24} "
            f"max {max(slo_groups):.4f}, mean {statistics.mean(slo_groups):.5f}, "
            f"sum {sum(slo_groups):.3f}"
        )


if __name__ == "__main__":
    main()
