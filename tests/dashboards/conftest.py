"""A real monitoring stack for the dashboard queries, local to this directory.

- a reference engine (``cplane-engine serve``) under steady load, and a second engine target
  that serves the captured vLLM exposition of ``tests/fixtures/collectors/vllm`` (the
  reference engine has no KV-cache gauge);
- ``cplane up`` with its collectors on, reading the in-tree fake NVML (``nvml_shim`` on its
  PYTHONPATH makes ``import pynvml`` return it), so GPU series reach its ``/metrics``; one
  registered engine that does not answer, so scrape failures are counted; one real guarded
  rollout through the API, so rollout outcomes and health checks are counted;
- Debian's ``prometheus`` on a free loopback port scraping all of them every second, with
  its own temporary storage.

Everything is stopped at the end, whatever happened.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.fixtures.cli import ControlPlane
from tests.fixtures.cli import run_cplane
from tests.fixtures.engines import free_port
from tests.fixtures.engines import start_engine

REPO = Path(__file__).resolve().parents[2]
SHIM = Path(__file__).resolve().parent / "nvml_shim"
VLLM_EXPOSITION = REPO / "tests/fixtures/collectors/vllm/metrics.txt"


@dataclass
class Stack:
    prometheus_url: str

    def query(self, expr: str) -> list[object]:
        r = httpx.get(f"{self.prometheus_url}/api/v1/query", params={"query": expr}, timeout=10)
        body = r.json()
        assert r.status_code == 200 and body["status"] == "success", f"{expr}: {body}"
        result: list[object] = body["data"]["result"]
        return result


def _prometheus_bin() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        if os.environ.get("CP_TEST_REQUIRE_PROMTOOL"):
            pytest.fail("prometheus not found (scripts/install_system_packages.sh prometheus)")
        pytest.skip("prometheus not installed")
    return binary


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        time.sleep(0.2)


class _Exposition(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = VLLM_EXPOSITION.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _load(url: str, stop: threading.Event) -> None:
    """Completions back to back, and now and then a bad request (counted as a failure)."""
    with httpx.Client(timeout=30) as client:
        n = 0
        while not stop.is_set():
            n += 1
            body = {"model": "tiny", "prompt": "hello dashboards", "max_tokens": 8}
            if n % 10 == 0:
                body["max_tokens"] = 0
            try:
                client.post(f"{url}/v1/completions", json=body)
            except httpx.TransportError:
                time.sleep(0.1)


def _prometheus_config(engine_url: str, vllm_port: int, cplane_port: int) -> str:
    engine_host = engine_url.removeprefix("http://")
    return f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: engines
    static_configs:
      - targets: ["{engine_host}"]
        labels: {{engine: ref, kind: reference}}
      - targets: ["127.0.0.1:{vllm_port}"]
        labels: {{engine: vllm-capture, kind: vllm}}
  - job_name: cplane
    static_configs:
      - targets: ["127.0.0.1:{cplane_port}"]
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus_bin = _prometheus_bin()
    tmp = tmp_path_factory.mktemp("dashboards")
    stop_load = threading.Event()
    cleanups: list[Callable[[], None]] = []
    try:
        engine = start_engine(tmp)
        cleanups.append(engine.stop)
        load = threading.Thread(target=_load, args=(engine.url, stop_load), daemon=True)
        load.start()
        cleanups.append(lambda: (stop_load.set(), load.join(timeout=35)))

        vllm = ThreadingHTTPServer(("127.0.0.1", 0), _Exposition)
        threading.Thread(target=vllm.serve_forever, daemon=True).start()
        cleanups.append(lambda: (vllm.shutdown(), vllm.server_close()))

        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(SHIM), str(REPO)]),
            "CP_DATA_DIR": str(tmp / "cp"),
            "CP_DATABASE_URL": "",
            "CP_LOG_LEVEL": "WARNING",
            "CP_COLLECTORS__ENABLED": "true",
            "CP_COLLECTORS__SCRAPE_INTERVAL_S": "0.5",
            "CP_COLLECTORS__SYSTEM_INTERVAL_S": "0.5",
            "CP_COLLECTORS__TARGETS_REFRESH_S": "0.5",
        }
        run_cplane(env, "db", "upgrade")
        run_cplane(
            env, "engine", "add", "ref", "--url", engine.url, "--admin-token", engine.admin_token
        )
        run_cplane(env, "slo", "set", "ref", "p99_ms<=10000")  # a rollout needs an SLO
        run_cplane(env, "engine", "add", "ghost", "--url", f"http://127.0.0.1:{free_port()}")
        run_cplane(env, "user", "create", "dash", "--role", "operator")
        token = run_cplane(env, "token", "create", "dash").split()[-1]
        cplane = ControlPlane(env, free_port())
        cleanups.append(cplane.stop)
        cplane.start()

        port = free_port()
        config = tmp / "prometheus.yml"
        config.write_text(_prometheus_config(engine.url, vllm.server_address[1], cplane.port))
        log = (tmp / "prometheus.log").open("wb")
        prometheus = subprocess.Popen(
            [
                prometheus_bin,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )

        def stop_prometheus() -> None:
            prometheus.terminate()
            try:
                prometheus.wait(timeout=15)
            except subprocess.TimeoutExpired:
                prometheus.kill()
                prometheus.wait()
            log.close()

        cleanups.append(stop_prometheus)
        stack = Stack(f"http://127.0.0.1:{port}")

        def ready() -> bool:
            try:
                return httpx.get(f"{stack.prometheus_url}/-/ready", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        _wait(ready, 30, "prometheus ready")

        # One real guarded rollout, so rollout outcomes and health checks exist.
        r = httpx.post(
            f"{cplane.url}/api/v1/engines/ref/rollouts",
            json={"changes": {"max_batch_size": 4}, "bake_s": 2},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert r.status_code == 202, r.text
        _wait(lambda: bool(stack.query("cplane_rollouts_total")), 120, "a finished rollout")
        _wait(lambda: bool(stack.query("gpu_xid_errors_total")), 30, "GPU series")
        _wait(
            lambda: (
                len(stack.query('up{engine!=""} == 1')) == 2
                and bool(stack.query('up{job="cplane"} == 1'))
            ),
            30,
            "every target up",
        )
        time.sleep(5)  # a few more samples, so every rate() window holds several
        yield stack
    finally:
        for cleanup in reversed(cleanups):
            cleanup()
