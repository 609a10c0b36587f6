"""Oversized bodies sent to a real ``cplane up`` process without a token: each is refused with
413, and the server's peak resident memory stays near where it was (it never holds a body)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.fixtures.cli import ControlPlane
from tests.fixtures.cli import run_cplane
from tests.fixtures.engines import free_port
from tests.rss import PeakRss

pytestmark = pytest.mark.slow

BODY = b"[" + b"0," * (25 * 2**20) + b"0]"  # 50 MiB of valid JSON
BOUND_MIB = 64  # before the limit, four such bodies raised the peak by about 450 MiB


def _chunked() -> Iterator[bytes]:
    view = memoryview(BODY)
    for start in range(0, len(BODY), 2**20):
        yield bytes(view[start : start + 2**20])


def _post(url: str, *, chunked: bool) -> int:
    content = _chunked() if chunked else BODY
    headers = {"Content-Type": "application/json"}
    return httpx.post(url, content=content, headers=headers, timeout=120).status_code


def test_concurrent_oversized_bodies_leave_peak_rss_within_a_bound(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CP_")},
        "CP_DATA_DIR": str(tmp_path / "cp"),
    }
    run_cplane(env, "db", "upgrade")
    cp = ControlPlane(env, free_port())
    cp.start()
    try:
        assert cp.process is not None
        targets = [
            (f"{cp.url}/api/v1/engines", False),
            (f"{cp.url}/api/v1/engines", True),
            (f"{cp.url}/api/v1/ingest", False),
            (f"{cp.url}/api/v1/ingest", True),
        ]
        with PeakRss(cp.process.pid) as rss, ThreadPoolExecutor(len(targets)) as pool:
            statuses = list(pool.map(lambda t: _post(t[0], chunked=t[1]), targets))
        assert statuses == [413, 413, 413, 413]
        assert rss.growth_mib < BOUND_MIB, f"peak RSS grew by {rss.growth_mib:.0f} MiB"
        assert httpx.get(f"{cp.url}/healthz", timeout=10).status_code == 200
    finally:
        cp.stop()
