"""The leak detector on a real leaking process: the reference engine, its leak fault switched
on, serves requests; the real collectors read its process RSS (psutil, found by its port) and
its request counter (``/metrics``, parsed with the reference metric map) into the store; the
detector job then raises ``EngineMemoryLeak`` on that engine.

Thresholds are lowered so a test-sized run (a few hundred requests, not 20k) is judged; the
leak itself (256 KiB per request on a process of a few hundred MB) is far above any
threshold. A warm-up runs first, so allocator growth of the first requests is not counted.

Engine and host names are this test's own: the store caches series ids per database engine,
and the test database is emptied, not recreated, between tests.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from collectors import HostCollector
from collectors import fetch_text
from collectors import parse
from controlplane.domain import EngineTarget
from controlplane.engines.metric_maps import metric_map_for
from controlplane.scheduler import Firing
from controlplane.scheduler.detectors import DetectorSource
from controlplane.schemas.engines import EngineCreate
from controlplane.settings import DetectorSettings
from controlplane.settings import Settings
from controlplane.store import alerts
from controlplane.store import engines
from controlplane.store import samples
from controlplane.store.database import make_session_factory
from tests.fixtures.engines import RunningEngine
from tests.fixtures.engines import start_engine

pytestmark = pytest.mark.slow

LEAK = 256 * 1024
POLICY = DetectorSettings(leak_min_requests=150, leak_min_points=8, qps_min_points=3)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[RunningEngine]:
    e = start_engine(tmp_path, "--batch-size", "8")
    yield e
    e.stop()


def _burst(client: httpx.Client, n: int) -> None:
    body = {"model": "tiny", "prompt": "leak", "max_tokens": 1}
    with ThreadPoolExecutor(8) as pool:
        codes = list(
            pool.map(lambda _: client.post("/v1/completions", json=body).status_code, range(n))
        )
    assert codes == [200] * n


def test_a_leaking_engine_raises_memory_leak(db_engine: Engine, engine: RunningEngine) -> None:
    factory = make_session_factory(db_engine)
    with factory() as session, session.begin():
        row = engines.add_engine(
            session,
            data=EngineCreate(name="leaky-live", url=engine.url, admin_token=engine.admin_token),
            actor="t",
        )
        target = engines.engine_target(row)
    host = HostCollector(source="host:live-leak", engines=lambda: [target])
    metric_map = metric_map_for("reference")
    admin = {"Authorization": f"Bearer {engine.admin_token}"}

    def collect(client: httpx.Client, t: EngineTarget) -> None:
        ts = time.time()
        text = fetch_text(client, t.resolved_metrics_url, timeout_s=5, max_bytes=10 << 20)
        batch = parse(text, source=t.name, metric_map=metric_map, ts=ts) + host.collect(ts)
        with factory() as session, session.begin():
            samples.insert_samples(session, batch)

    with httpx.Client(base_url=engine.url, timeout=30) as client:
        _burst(client, 60)  # warm-up, not measured
        assert (
            client.put(
                "/admin/faults", json={"leak_bytes_per_request": LEAK}, headers=admin
            ).status_code
            == 200
        )
        start = time.time()
        for _ in range(12):
            _burst(client, 24)
            collect(client, target)
        leaked = client.get("/admin/faults", headers=admin).json()["leaked_bytes"]
    assert leaked >= 12 * 24 * LEAK

    now = datetime.now(UTC)
    source = DetectorSource(Settings(detectors=POLICY))
    detail = source.run(
        Firing(job="detectors", scheduled_for=now, fence=None, sessions=factory, now=lambda: now)
    )
    # (Bursts with a pause to collect between them may also read as a QPS swing: not judged.)
    changed = detail.detail["changed"].get("leaky-live", [])
    assert "EngineMemoryLeak firing" in changed, detail.detail
    with factory() as session:
        (alert,) = alerts.list_alerts(session, alertname="EngineMemoryLeak")
        assert alert.engine == "leaky-live" and alert.source.value == "detector"
        assert "per 100k requests" in alert.annotations["summary"]
    assert time.time() - start < 240
