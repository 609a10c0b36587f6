"""What the quality benchmarks share: a real engine process, an adapter on it, faults."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from controlplane.domain import EngineTarget
from controlplane.engines.reference import ReferenceAdapter

ADMIN_TOKEN = "bench-admin-token"
THRESHOLD = 0.98  # quality>=0.98: the spec docs/quality.md uses as the default


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def engine(model: str, *, batch_size: int = 8) -> Iterator[ReferenceAdapter]:
    """``python -m engine serve`` on a free port; an adapter on it once it is healthy."""
    port = free_port()
    cmd = [
        sys.executable, "-m", "engine", "serve", "--model", model, "--host", "127.0.0.1",
        "--port", str(port), "--batch-size", str(batch_size), "--admin-token", ADMIN_TOKEN,
        "--log-level", "warning",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, env=dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"engine exited with {proc.returncode}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("engine did not become healthy")
            time.sleep(0.2)
        adapter = ReferenceAdapter(
            EngineTarget("bench", "reference", url, admin_token=ADMIN_TOKEN)
        )
        try:
            yield adapter
        finally:
            adapter.close()
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def admin(adapter: ReferenceAdapter, method: str, path: str, body: Any = None) -> Any:
    response = httpx.request(
        method,
        f"{adapter.target.url}{path}",
        json=body,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=300,
    )
    response.raise_for_status()
    return response.json()


def load_avg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())
