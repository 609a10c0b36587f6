"""Shared helpers for the engine benchmarks: start a real engine process, reconfigure it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
ADMIN_TOKEN = "bench-admin-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def engine_process(
    model: str = "small",
    *,
    batch_size: int = 8,
    streams: int = 1,
    precision: str = "fp32",
    max_queue: int = 512,
) -> Iterator[str]:
    """Starts ``python -m engine serve`` and yields its base URL once it is healthy."""
    port = free_port()
    cmd = [
        sys.executable, "-m", "engine", "serve", "--model", model, "--host", "127.0.0.1",
        "--port", str(port), "--batch-size", str(batch_size), "--streams", str(streams),
        "--precision", precision, "--admin-token", ADMIN_TOKEN, "--log-level", "warning",
        "--max-queue", str(max_queue),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"engine exited with {proc.returncode}")
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("engine did not become healthy")
            time.sleep(0.2)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def put_config(base_url: str, config: dict[str, Any]) -> dict[str, Any]:
    response = httpx.put(
        f"{base_url}/admin/config",
        json=config,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=120,
    )
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"
