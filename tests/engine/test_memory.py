"""Oversized prompts sent to a real ``cplane-engine serve`` process (no token needed): each is
refused with 413, and the engine's peak resident memory stays near where it was."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.fixtures.engines import start_engine
from tests.rss import PeakRss

pytestmark = pytest.mark.slow

PROMPT = json.dumps({"model": "tiny", "prompt": "x" * (50 * 2**20), "max_tokens": 1}).encode()
BOUND_MIB = 64  # before the limit, one such prompt raised the peak by about 900 MiB


def _chunked() -> Iterator[bytes]:
    view = memoryview(PROMPT)
    for start in range(0, len(PROMPT), 2**20):
        yield bytes(view[start : start + 2**20])


def _post(url: str, chunked: bool) -> int:
    content = _chunked() if chunked else PROMPT
    headers = {"Content-Type": "application/json"}
    return httpx.post(url, content=content, headers=headers, timeout=120).status_code


def test_concurrent_oversized_prompts_leave_peak_rss_within_a_bound(tmp_path: Path) -> None:
    engine = start_engine(tmp_path)
    try:
        url = f"{engine.url}/v1/completions"
        with PeakRss(engine.process.pid) as rss, ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(lambda chunked: _post(url, chunked), [0, 1, 0, 1]))
            health = httpx.get(f"{engine.url}/healthz", timeout=10).status_code
        assert statuses == [413, 413, 413, 413]
        assert health == 200
        assert rss.growth_mib < BOUND_MIB, f"peak RSS grew by {rss.growth_mib:.0f} MiB"
    finally:
        engine.stop()
