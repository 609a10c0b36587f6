"""``import pynvml`` in the control plane subprocess of the dashboard test: the in-tree fake
NVML (which mirrors nvidia-ml-py) with two GPUs that report every series, one XID event
queued. Put on PYTHONPATH only by tests/dashboards/conftest.py; never installed."""

from __future__ import annotations

import sys

from tests.collectors import fake_nvml
from tests.collectors.fake_nvml import FakeGpu

fake_nvml.configure(
    [
        FakeGpu(
            memory_temperature_c=71, pcie_replays=0, gpm={2: 55.0, 3: 40.0, 5: 20.0, 10: 30.0}
        ),
        FakeGpu(
            uuid="GPU-11111111-1111-1111-1111-111111111111",
            memory_temperature_c=69,
            pcie_replays=0,
            gpm={2: 45.0, 3: 35.0, 5: 10.0, 10: 25.0},
        ),
    ]
)
fake_nvml.emit_xid(1, 79)
sys.modules[__name__] = fake_nvml
