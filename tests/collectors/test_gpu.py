"""The GPU collector against the in-tree fake NVML (tests/collectors/fake_nvml.py), which
mirrors nvidia-ml-py's function names, return types and exception classes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from types import ModuleType

import pytest

from collectors import GpuCollector
from controlplane.domain import Sample
from tests.collectors import fake_nvml
from tests.collectors.fake_nvml import FakeGpu
from tests.collectors.helpers import wait_for


@pytest.fixture
def nvml() -> Iterator[ModuleType]:
    fake_nvml.configure([FakeGpu(), FakeGpu(uuid="GPU-1111", gpm={2: 55.0, 5: 20.0, 10: 30.0})])
    yield fake_nvml


def _value(samples: list[Sample], metric: str, **labels: str) -> float:
    found = [
        s.value
        for s in samples
        if s.metric == metric and all(s.label(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, (metric, labels, found)
    return found[0]


def test_readings_in_base_units(nvml: ModuleType) -> None:
    gpu = GpuCollector(nvml, source="host:n1")
    s = gpu.collect(10.0)
    d0 = {"uuid": "GPU-00000000-0000-0000-0000-000000000000"}
    assert _value(s, "gpu_utilization_ratio", **d0) == 0.87
    assert _value(s, "gpu_memory_used_bytes", **d0) == 45_005_959_168  # v2: reserved excluded
    assert _value(s, "gpu_memory_reserved_bytes", **d0) == 514_850_816
    assert _value(s, "gpu_power_watts", **d0) == pytest.approx(312.456)
    assert _value(s, "gpu_energy_joules_total", **d0) == pytest.approx(9_876_543.21)
    assert _value(s, "gpu_sm_clock_hertz", **d0) == 1.98e9
    assert _value(s, "gpu_clock_event_active", reason="sw_power_cap", **d0) == 1
    assert _value(s, "gpu_clock_event_active", reason="hw_slowdown", **d0) == 0
    assert _value(s, "gpu_ecc_errors_total", type="corrected", **d0) == 3
    assert _value(s, "gpu_remapped_rows_total", type="correctable", **d0) == 2
    assert _value(s, "gpu_process_memory_bytes", pid="4242", **d0) == 20_000_000_000
    metrics = {x.metric for x in s}
    assert "gpu_pcie_replays_total" not in metrics  # sentinel dropped
    assert "gpu_memory_temperature_celsius" not in metrics  # NotSupported dropped
    assert not [x for x in s if x.label("pid") == "4343"]  # usedGpuMemory unavailable


def test_not_supported_is_not_asked_again_and_gpm_needs_two_readings(nvml: ModuleType) -> None:
    gpu = GpuCollector(nvml)
    first = gpu.collect(1.0)
    assert "gpu_sm_utilization_ratio" not in {x.metric for x in first}
    second = gpu.collect(2.0)
    assert _value(second, "gpu_sm_utilization_ratio", uuid="GPU-1111") == 0.55
    assert _value(second, "gpu_dram_bandwidth_utilization_ratio", uuid="GPU-1111") == 0.30
    assert fake_nvml.state.gpus[0].calls["memory_temperature_c"] == 1


def test_xid_events_are_counted_on_their_own_thread(nvml: ModuleType) -> None:
    gpu = GpuCollector(nvml, event_timeout_ms=20)
    gpu.start()
    try:
        fake_nvml.emit_xid(1, 79)
        fake_nvml.emit_xid(1, 79)
        fake_nvml.emit_xid(0, 48)

        def xids() -> list[Sample]:
            return [x for x in gpu.collect(3.0) if x.metric == "gpu_xid_errors_total"]

        wait_for(lambda: sum(x.value for x in xids()) == 3, what="three XIDs")
        assert _value(xids(), "gpu_xid_errors_total", uuid="GPU-1111", xid="79") == 2
    finally:
        gpu.close()


def test_lost_gpu_is_skipped_process_lives(nvml: ModuleType) -> None:
    fake_nvml.state.gpus[0].utilization = fake_nvml.NVMLError_GpuIsLost
    gpu = GpuCollector(nvml)
    s = gpu.collect(1.0)
    assert {x.label("uuid") for x in s} == {"GPU-1111"}


def test_without_nvml_disables_itself_with_one_line(caplog: pytest.LogCaptureFixture) -> None:
    fake_nvml.configure([], init_error=fake_nvml.NVMLError_LibraryNotFound)
    seen: list[bool] = []
    with caplog.at_level(logging.INFO, logger="collectors._gpu"):
        gpu = GpuCollector(fake_nvml, on_enabled=seen.append)
    assert not gpu.enabled and seen == [False]
    assert gpu.collect(1.0) == []
    gpu.start()
    gpu.close()
    assert len([r for r in caplog.records if "disabled" in r.message]) == 1


def test_real_module_absent_or_driverless_never_raises() -> None:
    gpu = GpuCollector()  # nvidia-ml-py is installed; this machine has no driver
    assert gpu.collect(1.0) == [] or gpu.enabled
    gpu.close()
