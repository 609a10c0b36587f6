from __future__ import annotations

import os
import socket

from collectors import HostCollector
from controlplane.domain import EngineTarget


def test_host_and_engine_process_readings() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        target = EngineTarget("e", "reference", f"http://127.0.0.1:{port}")
        host = HostCollector(source="host:t", engines=lambda: [target])
        samples = {s.metric: s for s in host.collect(1.0)}
    assert 0.0 <= samples["host_cpu_utilization_ratio"].value <= 1.0
    assert samples["host_memory_total_bytes"].value > 0
    rss = samples["host_engine_process_resident_memory_bytes"]
    assert rss.label("engine") == "e" and rss.value > 0  # this test process listens
    assert samples["host_engine_process_cpu_seconds_total"].value > 0
    assert os.getpid() in [p.pid for p in host._pids.values()]


def test_remote_engines_are_left_to_their_agent() -> None:
    host = HostCollector(engines=lambda: [EngineTarget("r", "vllm", "http://10.1.2.3:8000")])
    assert not [s for s in host.collect(1.0) if s.metric.startswith("host_engine")]
