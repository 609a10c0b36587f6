"""An in-tree fake of NVML as nvidia-ml-py (``import pynvml``) exposes it.

It mirrors the names the GPU collector calls (``nvmlInit``, ``nvmlDeviceGet*``,
``nvmlEventSet*``, ``nvmlGpm*``), their return types (``c_nvmlMemory_v2_t``-like objects with
``.total/.reserved/.free/.used``, ``c_nvmlUtilization_t`` with ``.gpu/.memory``, process
entries with ``.pid/.usedGpuMemory``, ``c_nvmlEventData_t`` with ``.device/.eventType/
.eventData``, ``c_nvmlGpmMetricsGet_t`` with a ``metrics`` array) and its exception model:
``NVMLError(value)`` with ``.value`` returns the subclass for that return code
(``NVMLError_NotSupported``, ``NVMLError_Timeout``, ...), exactly as the real module's
``NVMLError.__new__`` does. Values come from :class:`FakeGpu` objects a test configures.
Only what the collector uses is implemented; the real module has hundreds more functions.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from dataclasses import field
from typing import Any

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_TIMEOUT = 10
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_UNKNOWN = 999

NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_SM = 1
NVML_CLOCK_MEM = 2
NVML_VOLATILE_ECC = 0
NVML_MEMORY_ERROR_TYPE_CORRECTED = 0
NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
nvmlMemory_v2 = 0x02000028
nvmlEventTypeXidCriticalError = 0x0000000000000008
NVML_GPM_METRICS_GET_VERSION = 1
NVML_VALUE_NOT_AVAILABLE_ulonglong = 0xFFFFFFFFFFFFFFFF


class NVMLError(Exception):
    _classes: dict[int, type[NVMLError]] = {}

    def __new__(cls, value: int) -> NVMLError:  # noqa: D102 - mirrors pynvml
        target = NVMLError._classes.get(value, cls) if cls is NVMLError else cls
        obj = Exception.__new__(target)
        obj.value = value
        return obj

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return f"NVML error {self.value}"


def _error_class(name: str, value: int) -> type[NVMLError]:
    cls = type(f"NVMLError_{name}", (NVMLError,), {})
    NVMLError._classes[value] = cls
    return cls


NVMLError_Uninitialized = _error_class("Uninitialized", NVML_ERROR_UNINITIALIZED)
NVMLError_NotSupported = _error_class("NotSupported", NVML_ERROR_NOT_SUPPORTED)
NVMLError_NoPermission = _error_class("NoPermission", NVML_ERROR_NO_PERMISSION)
NVMLError_DriverNotLoaded = _error_class("DriverNotLoaded", NVML_ERROR_DRIVER_NOT_LOADED)
NVMLError_Timeout = _error_class("Timeout", NVML_ERROR_TIMEOUT)
NVMLError_LibraryNotFound = _error_class("LibraryNotFound", NVML_ERROR_LIBRARY_NOT_FOUND)
NVMLError_FunctionNotFound = _error_class("FunctionNotFound", NVML_ERROR_FUNCTION_NOT_FOUND)
NVMLError_GpuIsLost = _error_class("GpuIsLost", NVML_ERROR_GPU_IS_LOST)
NVMLError_Unknown = _error_class("Unknown", NVML_ERROR_UNKNOWN)


@dataclass
class c_nvmlMemory_v2_t:
    version: int
    total: int
    reserved: int
    free: int
    used: int


@dataclass
class c_nvmlMemory_t:
    total: int
    free: int
    used: int


@dataclass
class c_nvmlUtilization_t:
    gpu: int
    memory: int


@dataclass
class c_nvmlProcessInfo_v3_t:
    pid: int
    usedGpuMemory: int | None
    gpuInstanceId: int = 0xFFFFFFFF
    computeInstanceId: int = 0xFFFFFFFF


@dataclass
class c_nvmlEventData_t:
    device: Any
    eventType: int
    eventData: int
    gpuInstanceId: int = 0xFFFFFFFF
    computeInstanceId: int = 0xFFFFFFFF


@dataclass
class c_nvmlGpmSupport_t:
    version: int = 1
    isSupportedDevice: int = 0


@dataclass
class c_nvmlGpmMetric_t:
    metricId: int = 0
    nvmlReturn: int = NVML_SUCCESS
    value: float = 0.0


class c_nvmlGpmMetricsGet_t:
    def __init__(self) -> None:
        self.version = 0
        self.numMetrics = 0
        self.sample1: Any = None
        self.sample2: Any = None
        self.metrics = [c_nvmlGpmMetric_t() for _ in range(98)]


@dataclass
class FakeGpu:
    """One device's readings; a value that is an NVMLError subclass is raised instead."""

    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    name: str = "NVIDIA H100 80GB HBM3"
    utilization: Any = (87, 41)
    memory_v2: Any = (85_520_809_984, 514_850_816, 40_000_000_000, 45_005_959_168)
    power_mw: Any = 312_456
    power_limit_mw: Any = 700_000
    energy_mj: Any = 9_876_543_210
    temperature_c: Any = 61
    memory_temperature_c: Any = NVMLError_NotSupported
    sm_clock_mhz: Any = 1980
    mem_clock_mhz: Any = 2619
    clock_event_mask: Any = 0x4 | 0x1
    ecc: Any = (3, 0)
    remapped_rows: Any = (2, 0, False, False)
    pcie_replays: Any = 0x7FFFFFFFFFFFFFF2  # a DCGM-style "not supported" sentinel
    processes: Any = ((4242, 20_000_000_000), (4343, None))
    gpm: Any = None  # {metric_id: percent} when the device supports GPM
    supported_events: int = nvmlEventTypeXidCriticalError
    calls: dict[str, int] = field(default_factory=dict)


class _State:
    gpus: list[FakeGpu] = []
    init_error: type[NVMLError] | None = None
    events: queue.Queue[c_nvmlEventData_t] = queue.Queue()
    initialized = False
    lock = threading.Lock()


state = _State()


def configure(gpus: list[FakeGpu], *, init_error: type[NVMLError] | None = None) -> None:
    state.gpus = gpus
    state.init_error = init_error
    state.events = queue.Queue()
    state.initialized = False


def emit_xid(index: int, xid: int) -> None:
    """Queue an XID critical-error event for device ``index``."""
    state.events.put(c_nvmlEventData_t(state.gpus[index], nvmlEventTypeXidCriticalError, xid))


def _get(gpu: FakeGpu, name: str) -> Any:
    gpu.calls[name] = gpu.calls.get(name, 0) + 1
    value = getattr(gpu, name)
    if isinstance(value, type) and issubclass(value, NVMLError):
        raise value(next(k for k, v in NVMLError._classes.items() if v is value))
    return value


def nvmlInit() -> None:
    if state.init_error is not None:
        raise state.init_error(
            next(k for k, v in NVMLError._classes.items() if v is state.init_error)
        )
    state.initialized = True


def nvmlShutdown() -> None:
    state.initialized = False


def nvmlDeviceGetCount() -> int:
    return len(state.gpus)


def nvmlDeviceGetHandleByIndex(index: int) -> FakeGpu:
    return state.gpus[index]


def nvmlDeviceGetUUID(handle: FakeGpu) -> str:
    return handle.uuid


def nvmlDeviceGetName(handle: FakeGpu) -> str:
    return handle.name


def nvmlDeviceGetUtilizationRates(handle: FakeGpu) -> c_nvmlUtilization_t:
    return c_nvmlUtilization_t(*_get(handle, "utilization"))


def nvmlDeviceGetMemoryInfo(handle: FakeGpu, version: int | None = None) -> Any:
    total, reserved, free, used = _get(handle, "memory_v2")
    if version == nvmlMemory_v2:
        return c_nvmlMemory_v2_t(nvmlMemory_v2, total, reserved, free, used)
    return c_nvmlMemory_t(total, free, used + reserved)


def nvmlDeviceGetPowerUsage(handle: FakeGpu) -> int:
    return int(_get(handle, "power_mw"))


def nvmlDeviceGetEnforcedPowerLimit(handle: FakeGpu) -> int:
    return int(_get(handle, "power_limit_mw"))


def nvmlDeviceGetTotalEnergyConsumption(handle: FakeGpu) -> int:
    return int(_get(handle, "energy_mj"))


def nvmlDeviceGetTemperature(handle: FakeGpu, sensor: int) -> int:
    return int(_get(handle, "temperature_c"))


@dataclass
class _FieldValueUnion:
    dVal: float = 0.0
    uiVal: int = 0
    ulVal: int = 0
    ullVal: int = 0
    sllVal: int = 0
    siVal: int = 0


@dataclass
class c_nvmlFieldValue_t:
    fieldId: int
    nvmlReturn: int
    valueType: int
    value: _FieldValueUnion


def nvmlDeviceGetFieldValues(handle: FakeGpu, field_ids: list[int]) -> list[c_nvmlFieldValue_t]:
    try:
        temp = _get(handle, "memory_temperature_c")
    except NVMLError as exc:
        return [c_nvmlFieldValue_t(field_ids[0], exc.value, 1, _FieldValueUnion())]
    return [c_nvmlFieldValue_t(field_ids[0], NVML_SUCCESS, 1, _FieldValueUnion(uiVal=temp))]


def nvmlDeviceGetClockInfo(handle: FakeGpu, clock: int) -> int:
    return int(_get(handle, "sm_clock_mhz" if clock == NVML_CLOCK_SM else "mem_clock_mhz"))


def nvmlDeviceGetCurrentClocksEventReasons(handle: FakeGpu) -> int:
    return int(_get(handle, "clock_event_mask"))


def nvmlDeviceGetTotalEccErrors(handle: FakeGpu, error_type: int, counter_type: int) -> int:
    return int(_get(handle, "ecc")[error_type])


def nvmlDeviceGetRemappedRows(handle: FakeGpu) -> tuple[int, int, bool, bool]:
    return tuple(_get(handle, "remapped_rows"))  # type: ignore[return-value]


def nvmlDeviceGetPcieReplayCounter(handle: FakeGpu) -> int:
    return int(_get(handle, "pcie_replays"))


def nvmlDeviceGetComputeRunningProcesses(handle: FakeGpu) -> list[c_nvmlProcessInfo_v3_t]:
    return [c_nvmlProcessInfo_v3_t(pid, mem) for pid, mem in _get(handle, "processes")]


def nvmlDeviceGetSupportedEventTypes(handle: FakeGpu) -> int:
    return handle.supported_events


def nvmlEventSetCreate() -> object:
    return object()


def nvmlDeviceRegisterEvents(handle: FakeGpu, event_types: int, event_set: object) -> None:
    return None


def nvmlEventSetWait_v2(event_set: object, timeout_ms: int) -> c_nvmlEventData_t:
    try:
        return state.events.get(timeout=timeout_ms / 1000)
    except queue.Empty:
        raise NVMLError_Timeout(NVML_ERROR_TIMEOUT) from None


def nvmlEventSetFree(event_set: object) -> None:
    return None


def nvmlGpmQueryDeviceSupport(handle: FakeGpu) -> c_nvmlGpmSupport_t:
    return c_nvmlGpmSupport_t(isSupportedDevice=1 if handle.gpm is not None else 0)


def nvmlGpmSampleAlloc() -> dict[str, Any]:
    return {}


def nvmlGpmSampleGet(handle: FakeGpu, sample: dict[str, Any]) -> None:
    sample["gpu"] = handle


def nvmlGpmSampleFree(sample: dict[str, Any]) -> None:
    return None


def nvmlGpmMetricsGet(mg: c_nvmlGpmMetricsGet_t) -> c_nvmlGpmMetricsGet_t:
    gpu: FakeGpu = mg.sample2["gpu"]
    for i in range(mg.numMetrics):
        m = mg.metrics[i]
        if m.metricId in gpu.gpm:
            m.value = float(gpu.gpm[m.metricId])
            m.nvmlReturn = NVML_SUCCESS
        else:
            m.nvmlReturn = NVML_ERROR_NOT_SUPPORTED
    return mg
