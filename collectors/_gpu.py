"""GPU readings through NVML (the ``nvidia-ml-py`` distribution, imported as ``pynvml``).

Per device, keyed by UUID (NVML indices need not match CUDA ordinals): utilization, memory
info v2 (v1 on drivers without it), power and energy, temperatures, SM and memory clocks,
clock-event (throttle) reasons, volatile ECC counts, remapped rows, PCIe replays, per-process
memory, and GPM ratios on Hopper and newer. Units are converted to base units (W, J, Hz,
ratios 0-1). A reading the device does not support (``NVMLError_NotSupported``), may not give
(``NoPermission``) or has no symbol for (``FunctionNotFound``) is dropped and not asked for
again; sentinels (values >= ``0x7FFFFFFFFFFFFFF0``, NVML's all-ones "not available") are
dropped. A lost GPU is marked and skipped; the process keeps running.

XID errors arrive only as NVML events: a dedicated thread waits on an event set with a short
timeout (so it stays stoppable) and counts them per device and XID.

Without NVML (no library, no driver, no GPU) the collector logs one line, reports itself
disabled (``cplane_gpu_collector_enabled 0``) and returns no samples; it never raises.
The NVML module is a constructor parameter so tests can pass an in-tree fake.
"""

from __future__ import annotations

import functools
import importlib
import logging
import socket
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

from controlplane.domain import Sample

log = logging.getLogger(__name__)

SENTINEL_MIN = 0x7FFFFFFFFFFFFFF0

# nvmlClocksEventReason* bits (NVML group__nvmlClocksEventReasons).
CLOCK_EVENT_REASONS = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}
# NVML_GPM_METRIC_* id -> exported series (percentages become ratios).
GPM_METRICS = {
    2: "gpu_sm_utilization_ratio",
    3: "gpu_sm_occupancy_ratio",
    5: "gpu_tensor_utilization_ratio",
    10: "gpu_dram_bandwidth_utilization_ratio",
}
NVML_FI_DEV_MEMORY_TEMP = 82


class _Skip(Exception):
    """This reading is unavailable on this device: drop it."""


class _Device:
    def __init__(self, index: int, handle: Any, uuid: str, name: str) -> None:
        self.index = index
        self.handle = handle
        self.uuid = uuid
        self.name = name
        self.unsupported: set[str] = set()
        self.lost = False
        self.gpm_supported = False
        self.gpm_prev: Any = None

    @property
    def labels(self) -> tuple[tuple[str, str], ...]:
        return (("gpu", str(self.index)), ("model", self.name), ("uuid", self.uuid))


def load_nvml() -> ModuleType | None:
    """``pynvml`` from nvidia-ml-py, or ``None`` when it is not installed."""
    try:
        return importlib.import_module("pynvml")
    except ImportError:
        return None


class GpuCollector:
    """Reads every GPU once per :meth:`collect`; the XID thread runs between calls."""

    def __init__(
        self,
        nvml: ModuleType | None = None,
        *,
        source: str | None = None,
        on_enabled: Callable[[bool], None] | None = None,
        event_timeout_ms: int = 500,
    ) -> None:
        self.source = source or f"host:{socket.gethostname()}"
        self._nvml = nvml if nvml is not None else load_nvml()
        self._event_timeout_ms = event_timeout_ms
        self._devices: list[_Device] = []
        self._xids: dict[tuple[str, int], int] = {}
        self._xid_lock = threading.Lock()
        self._stop = threading.Event()
        self._xid_thread: threading.Thread | None = None
        self.enabled = False
        self.disabled_reason: str | None = None
        self._init()
        if on_enabled is not None:
            on_enabled(self.enabled)

    # --- set-up ----------------------------------------------------------------------

    def _init(self) -> None:
        nv = self._nvml
        if nv is None:
            self._disable("nvidia-ml-py is not installed")
            return
        try:
            nv.nvmlInit()
            count = nv.nvmlDeviceGetCount()
            for i in range(count):
                h = nv.nvmlDeviceGetHandleByIndex(i)
                dev = _Device(i, h, _text(nv.nvmlDeviceGetUUID(h)), _text(nv.nvmlDeviceGetName(h)))
                dev.gpm_supported = self._gpm_support(dev)
                self._devices.append(dev)
        except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
            self._disable(f"NVML unavailable: {type(exc).__name__}: {exc}")
            return
        if not self._devices:
            self._disable("NVML found no GPU")
            return
        self.enabled = True
        log.info("GPU collector: %d device(s) via NVML", len(self._devices))

    def _disable(self, reason: str) -> None:
        self.enabled = False
        self.disabled_reason = reason
        log.info("GPU collector disabled: %s", reason)

    def _gpm_support(self, dev: _Device) -> bool:
        nv = self._nvml
        assert nv is not None
        try:
            return bool(nv.nvmlGpmQueryDeviceSupport(dev.handle).isSupportedDevice)
        except Exception:
            return False

    # --- reading ---------------------------------------------------------------------

    def _read(self, dev: _Device, key: str, fn: Callable[[], Any]) -> Any:
        """One NVML call; unsupported readings are remembered and not asked again."""
        nv = self._nvml
        assert nv is not None
        if dev.lost or key in dev.unsupported:
            raise _Skip
        try:
            return fn()
        except nv.NVMLError as exc:
            if isinstance(exc, nv.NVMLError_GpuIsLost | nv.NVMLError_Unknown):
                dev.lost = True
                log.warning("GPU %s (%s) is lost: %s", dev.index, dev.uuid, exc)
                raise _Skip from exc
            if isinstance(
                exc,
                nv.NVMLError_NotSupported
                | nv.NVMLError_NoPermission
                | nv.NVMLError_FunctionNotFound,
            ):
                dev.unsupported.add(key)
                log.info("GPU %s: %s not available (%s)", dev.index, key, type(exc).__name__)
            raise _Skip from exc

    def collect(self, ts: float) -> list[Sample]:
        """One reading of every device; ``[]`` when disabled. Never raises."""
        if not self.enabled:
            return []
        out: list[Sample] = []
        for dev in self._devices:
            if dev.lost:
                continue
            try:
                self._collect_device(dev, ts, out)
            except Exception as exc:  # a broken binding must not take the process down
                log.warning("GPU %s: reading failed: %s", dev.index, exc)
        with self._xid_lock:
            xids = dict(self._xids)
        by_uuid = {d.uuid: d for d in self._devices}
        for (uuid, xid), count in sorted(xids.items()):
            dev = by_uuid[uuid]
            out.append(self._sample(ts, "gpu_xid_errors_total", dev, count, xid=str(xid)))
        return out

    def _sample(self, ts: float, metric: str, dev: _Device, value: float, **extra: str) -> Sample:
        labels = tuple(sorted(dev.labels + tuple(extra.items())))
        return Sample(ts, self.source, metric, labels, float(value))

    def _collect_device(self, dev: _Device, ts: float, out: list[Sample]) -> None:
        nv = self._nvml
        assert nv is not None
        h = dev.handle

        def put(metric: str, key: str, fn: Callable[[], Any], scale: float = 1.0) -> None:
            try:
                value = self._read(dev, key, fn)
            except _Skip:
                return
            if _valid(value):
                out.append(self._sample(ts, metric, dev, value * scale))

        try:
            util = self._read(dev, "utilization", lambda: nv.nvmlDeviceGetUtilizationRates(h))
            if _valid(util.gpu):
                out.append(self._sample(ts, "gpu_utilization_ratio", dev, util.gpu / 100))
            if _valid(util.memory):
                out.append(
                    self._sample(ts, "gpu_memory_utilization_ratio", dev, util.memory / 100)
                )
        except _Skip:
            pass
        self._memory(dev, ts, out)
        put("gpu_power_watts", "power", lambda: nv.nvmlDeviceGetPowerUsage(h), 1e-3)
        put(
            "gpu_power_limit_watts",
            "power_limit",
            lambda: nv.nvmlDeviceGetEnforcedPowerLimit(h),
            1e-3,
        )
        put(
            "gpu_energy_joules_total",
            "energy",
            lambda: nv.nvmlDeviceGetTotalEnergyConsumption(h),
            1e-3,
        )
        put(
            "gpu_temperature_celsius",
            "temperature",
            lambda: nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU),
        )
        put("gpu_memory_temperature_celsius", "memory_temperature", lambda: _field(nv, h))
        put(
            "gpu_sm_clock_hertz",
            "sm_clock",
            lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM),
            1e6,
        )
        put(
            "gpu_memory_clock_hertz",
            "mem_clock",
            lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_MEM),
            1e6,
        )
        try:
            mask = int(self._read(dev, "clock_events", lambda: _clock_events(nv, h)))
            for bit, reason in CLOCK_EVENT_REASONS.items():
                out.append(
                    self._sample(
                        ts,
                        "gpu_clock_event_active",
                        dev,
                        1.0 if mask & bit else 0.0,
                        reason=reason,
                    )
                )
        except _Skip:
            pass
        for kind, err_type in (
            ("corrected", nv.NVML_MEMORY_ERROR_TYPE_CORRECTED),
            ("uncorrected", nv.NVML_MEMORY_ERROR_TYPE_UNCORRECTED),
        ):
            try:
                v = self._read(dev, f"ecc_{kind}", functools.partial(_ecc, nv, h, err_type))
                if _valid(v):
                    out.append(self._sample(ts, "gpu_ecc_errors_total", dev, v, type=kind))
            except _Skip:
                pass
        try:
            corr, unc, pending, failure = self._read(
                dev, "remapped_rows", lambda: nv.nvmlDeviceGetRemappedRows(h)
            )
            out.append(self._sample(ts, "gpu_remapped_rows_total", dev, corr, type="correctable"))
            out.append(self._sample(ts, "gpu_remapped_rows_total", dev, unc, type="uncorrectable"))
            out.append(self._sample(ts, "gpu_remapped_rows_pending", dev, 1.0 if pending else 0.0))
            out.append(self._sample(ts, "gpu_remapped_rows_failure", dev, 1.0 if failure else 0.0))
        except _Skip:
            pass
        put("gpu_pcie_replays_total", "pcie_replay", lambda: nv.nvmlDeviceGetPcieReplayCounter(h))
        try:
            procs = self._read(
                dev, "processes", lambda: nv.nvmlDeviceGetComputeRunningProcesses(h)
            )
            for p in procs:
                used: Any = getattr(p, "usedGpuMemory", None)
                if _valid(used):
                    out.append(
                        self._sample(
                            ts, "gpu_process_memory_bytes", dev, float(used), pid=str(p.pid)
                        )
                    )
        except _Skip:
            pass
        if dev.gpm_supported:
            self._gpm(dev, ts, out)

    def _memory(self, dev: _Device, ts: float, out: list[Sample]) -> None:
        nv = self._nvml
        assert nv is not None
        h = dev.handle
        try:
            mem = self._read(
                dev, "memory_v2", lambda: nv.nvmlDeviceGetMemoryInfo(h, version=nv.nvmlMemory_v2)
            )
        except _Skip:
            try:
                mem = self._read(dev, "memory_v1", lambda: nv.nvmlDeviceGetMemoryInfo(h))
            except _Skip:
                return
        for attr in ("used", "free", "reserved", "total"):
            value: Any = getattr(mem, attr, None)
            if _valid(value):
                out.append(self._sample(ts, f"gpu_memory_{attr}_bytes", dev, float(value)))

    def _gpm(self, dev: _Device, ts: float, out: list[Sample]) -> None:
        """GPM ratios between this reading and the previous one (no sleep needed: the
        collection interval is the sampling interval)."""
        nv = self._nvml
        assert nv is not None
        try:
            sample = nv.nvmlGpmSampleAlloc()
            nv.nvmlGpmSampleGet(dev.handle, sample)
        except Exception as exc:
            log.info("GPU %s: GPM sampling failed, disabled: %s", dev.index, exc)
            dev.gpm_supported = False
            return
        prev, dev.gpm_prev = dev.gpm_prev, sample
        if prev is None:
            return
        try:
            mg = nv.c_nvmlGpmMetricsGet_t()
            mg.version = nv.NVML_GPM_METRICS_GET_VERSION
            mg.numMetrics = len(GPM_METRICS)
            mg.sample1 = prev
            mg.sample2 = sample
            for i, metric_id in enumerate(GPM_METRICS):
                mg.metrics[i].metricId = metric_id
            nv.nvmlGpmMetricsGet(mg)
            for i, name in enumerate(GPM_METRICS.values()):
                m = mg.metrics[i]
                if m.nvmlReturn == 0 and _valid(m.value):
                    out.append(self._sample(ts, name, dev, m.value / 100))
        except Exception as exc:
            log.info("GPU %s: GPM metrics failed: %s", dev.index, exc)
        finally:
            try:
                nv.nvmlGpmSampleFree(prev)
            except Exception:
                pass

    # --- XID events ------------------------------------------------------------------

    def start(self) -> None:
        """Start the XID event thread (no-op when disabled or events are unsupported)."""
        if not self.enabled or self._xid_thread is not None:
            return
        nv = self._nvml
        assert nv is not None
        try:
            event_set = nv.nvmlEventSetCreate()
        except Exception as exc:
            log.info("GPU collector: no NVML events, XIDs not counted: %s", exc)
            return
        registered = 0
        for dev in self._devices:
            try:
                supported = nv.nvmlDeviceGetSupportedEventTypes(dev.handle)
                if supported & nv.nvmlEventTypeXidCriticalError:
                    nv.nvmlDeviceRegisterEvents(
                        dev.handle, nv.nvmlEventTypeXidCriticalError, event_set
                    )
                    registered += 1
            except Exception as exc:
                log.info("GPU %s: XID events unavailable: %s", dev.index, exc)
        if not registered:
            nv.nvmlEventSetFree(event_set)
            return
        self._xid_thread = threading.Thread(
            target=self._xid_loop, args=(event_set,), name="gpu-xid-events", daemon=True
        )
        self._xid_thread.start()

    def _xid_loop(self, event_set: Any) -> None:
        nv = self._nvml
        assert nv is not None
        by_handle = {id(d.handle): d for d in self._devices}
        try:
            while not self._stop.is_set():
                try:
                    data = nv.nvmlEventSetWait_v2(event_set, self._event_timeout_ms)
                except nv.NVMLError_Timeout:
                    continue
                except nv.NVMLError as exc:
                    log.warning("GPU XID event wait failed, stopping: %s", exc)
                    return
                if data.eventType != nv.nvmlEventTypeXidCriticalError:
                    continue
                dev = by_handle.get(id(data.device)) or self._device_by_uuid(data.device)
                if dev is None:
                    continue
                key = (dev.uuid, int(data.eventData))
                with self._xid_lock:
                    self._xids[key] = self._xids.get(key, 0) + 1
                log.warning("GPU %s: XID %d", dev.index, data.eventData)
        finally:
            try:
                nv.nvmlEventSetFree(event_set)
            except Exception:
                pass

    def _device_by_uuid(self, handle: Any) -> _Device | None:
        nv = self._nvml
        assert nv is not None
        try:
            uuid = _text(nv.nvmlDeviceGetUUID(handle))
        except Exception:
            return None
        return next((d for d in self._devices if d.uuid == uuid), None)

    def close(self) -> None:
        self._stop.set()
        if self._xid_thread is not None:
            self._xid_thread.join(5.0)
            self._xid_thread = None
        if self.enabled and self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass
            self.enabled = False


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _valid(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return False
    try:
        v = float(value)
    except (TypeError, ValueError):
        return False
    return v == v and v < SENTINEL_MIN and v not in (float("inf"), float("-inf"))


def _clock_events(nv: Any, handle: Any) -> int:
    fn = getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None)
    if fn is None:  # bindings older than the rename
        fn = nv.nvmlDeviceGetCurrentClocksThrottleReasons
    return int(fn(handle))


def _field(nv: Any, handle: Any) -> float:
    values = nv.nvmlDeviceGetFieldValues(handle, [NVML_FI_DEV_MEMORY_TEMP])
    v = values[0]
    if v.nvmlReturn != 0:
        raise nv.NVMLError(v.nvmlReturn)
    return float(_field_value(v))


def _field_value(v: Any) -> Any:
    # valueType 0 double, 1 uint, 2 ulong, 3 ulonglong, 4 slonglong, 5 sint ...
    names = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal"}
    return getattr(v.value, names.get(int(v.valueType), "ullVal"))


def _ecc(nv: Any, handle: Any, error_type: int) -> int:
    return int(nv.nvmlDeviceGetTotalEccErrors(handle, error_type, nv.NVML_VOLATILE_ECC))
