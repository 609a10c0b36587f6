"""The control plane's own ``/metrics`` with every collector reporting: GPU series (from the
in-tree fake NVML, which mirrors nvidia-ml-py), host and engine-process series from the real
psutil, and the collectors' health, checked by the real ``promtool check metrics``."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client import generate_latest

from collectors import GpuCollector
from collectors import HostCollector
from collectors._export import CollectorHealth
from controlplane.domain import EngineTarget
from tests.collectors import fake_nvml
from tests.collectors.fake_nvml import FakeGpu
from tests.collectors.helpers import wait_for


@pytest.fixture
def listening_port() -> Iterator[int]:
    """A port this test process listens on: the host collector's "engine process"."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _promtool() -> str:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CP_TEST_REQUIRE_PROMTOOL"):
            pytest.fail("promtool not found")
        pytest.skip("promtool not installed")
    return promtool


def test_gpu_host_and_health_series_pass_promtool(listening_port: int) -> None:
    fake_nvml.configure([FakeGpu(), FakeGpu(uuid="GPU-1111", gpm={2: 55.0, 5: 20.0, 10: 30.0})])
    registry = CollectorRegistry()
    health = CollectorHealth(registry)
    health.gpu_enabled.set(1)
    health.observe_scrape("engine", "ref", duration_s=0.01, error=None, ts=1.0)
    health.observe_scrape("engine", "ref", duration_s=2.0, error="timeout", ts=2.0)
    engine = EngineTarget(name="ref", kind="reference", url=f"http://127.0.0.1:{listening_port}")
    host = HostCollector(engines=lambda: [engine])
    gpu = GpuCollector(fake_nvml, event_timeout_ms=20)
    gpu.start()
    try:
        fake_nvml.emit_xid(1, 79)
        gpu.collect(1.0)  # GPM needs two readings
        wait_for(
            lambda: any(s.metric == "gpu_xid_errors_total" for s in gpu.collect(2.0)),
            what="an XID counted",
        )
        health.latest.replace("gpu_", gpu.collect(3.0))
        health.latest.replace("host_", host.collect(3.0))
    finally:
        gpu.close()
    body = generate_latest(registry)
    text = body.decode()
    for family in (
        "gpu_memory_used_bytes",
        "gpu_energy_joules_total",
        "gpu_clock_event_active",
        "gpu_xid_errors_total",
        "gpu_sm_utilization_ratio",
        "gpu_process_memory_bytes",
        "host_cpu_utilization_ratio",
        "host_engine_process_resident_memory_bytes",
        "host_engine_process_cpu_seconds_total",
        "cplane_collector_scrape_failures_total",
        "cplane_gpu_collector_enabled",
    ):
        assert f"\n{family}{{" in text or f"\n{family} " in text, family
    out = subprocess.run([_promtool(), "check", "metrics"], input=body, capture_output=True)
    assert out.returncode == 0, out.stdout.decode() + out.stderr.decode()
