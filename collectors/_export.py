"""The control plane's own ``/metrics``: GPU and host series plus the collectors' health.

Everything lives in one :class:`prometheus_client.CollectorRegistry` passed in by whoever
assembles the collectors (never the global default registry, so tests and several apps in
one process do not share counters). GPU and host readings are not instrumented with
long-lived Gauge objects: :class:`LatestSamples` keeps the last reading of each series and
renders it at scrape time, so a GPU that disappears stops being exported.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence

from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Gauge
from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from controlplane.domain import Sample

SCRAPE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Help text of every exported GPU / host series (promtool requires HELP).
HELP: dict[str, str] = {
    "gpu_utilization_ratio": "Share of the last sample period in which a kernel ran (0-1).",
    "gpu_memory_utilization_ratio": "Share of the last sample period memory was read/written.",
    "gpu_memory_used_bytes": "Device memory in use (memory info v2, reserved excluded).",
    "gpu_memory_free_bytes": "Device memory free.",
    "gpu_memory_reserved_bytes": "Device memory reserved by the driver.",
    "gpu_memory_total_bytes": "Device memory in total.",
    "gpu_power_watts": "Power draw.",
    "gpu_power_limit_watts": "Enforced power limit.",
    "gpu_energy_joules_total": "Energy consumed since the driver was loaded.",
    "gpu_temperature_celsius": "GPU core temperature.",
    "gpu_memory_temperature_celsius": "HBM temperature.",
    "gpu_sm_clock_hertz": "SM clock.",
    "gpu_memory_clock_hertz": "Memory clock.",
    "gpu_clock_event_active": "1 while the clock-event (throttle) reason is active.",
    "gpu_ecc_errors_total": "ECC errors since the driver was loaded (volatile).",
    "gpu_remapped_rows_total": "Rows remapped by the memory controller.",
    "gpu_remapped_rows_pending": "1 while a row remapping waits for a GPU reset.",
    "gpu_remapped_rows_failure": "1 after a row remapping failed.",
    "gpu_pcie_replays_total": "PCIe replay counter.",
    "gpu_process_memory_bytes": "Device memory used by one process.",
    "gpu_xid_errors_total": "XID errors seen as NVML events since the collector started.",
    "gpu_sm_utilization_ratio": "GPM: share of SMs busy (Hopper and newer).",
    "gpu_sm_occupancy_ratio": "GPM: active warps over the theoretical maximum.",
    "gpu_tensor_utilization_ratio": "GPM: share of time any tensor pipe was active.",
    "gpu_dram_bandwidth_utilization_ratio": "GPM: DRAM bandwidth used over the maximum.",
    "host_cpu_utilization_ratio": "Host CPU busy share since the previous reading (0-1).",
    "host_memory_used_bytes": "Host memory in use.",
    "host_memory_available_bytes": "Host memory available without swapping.",
    "host_memory_total_bytes": "Host memory in total.",
    "host_engine_process_resident_memory_bytes": "Resident memory of an engine's process.",
    "host_engine_process_cpu_seconds_total": "CPU time used by an engine's process.",
}


class LatestSamples(Collector):
    """Renders the latest value of each GPU / host series at scrape time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[tuple[str, tuple[tuple[str, str], ...]], Sample] = {}

    def replace(self, prefix: str, samples: Iterable[Sample]) -> None:
        """Swap in one collector's reading: series under ``prefix`` not in it disappear."""
        fresh = {(s.metric, s.labels): s for s in samples}
        with self._lock:
            for key in [k for k in self._latest if k[0].startswith(prefix)]:
                if key not in fresh:
                    del self._latest[key]
            self._latest.update(fresh)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            samples = list(self._latest.values())
        by_metric: dict[str, list[Sample]] = {}
        for s in samples:
            by_metric.setdefault(s.metric, []).append(s)
        for metric, group in sorted(by_metric.items()):
            label_names = sorted({k for s in group for k, _ in s.labels})
            doc = HELP.get(metric, metric.replace("_", " "))
            family: GaugeMetricFamily | CounterMetricFamily
            if metric.endswith("_total"):
                family = CounterMetricFamily(metric[: -len("_total")], doc, labels=label_names)
            else:
                family = GaugeMetricFamily(metric, doc, labels=label_names)
            for s in group:
                values = dict(s.labels)
                family.add_metric([values.get(n, "") for n in label_names], s.value)
            yield family


class CollectorHealth:
    """The collectors' own series: scrape outcomes and durations, buffer depth, drops."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.scrape_duration = Histogram(
            "cplane_collector_scrape_duration_seconds",
            "Time to fetch and parse one target, successful or not.",
            ["collector", "target"],
            buckets=SCRAPE_BUCKETS,
            registry=registry,
        )
        self.scrapes = Counter(
            "cplane_collector_scrapes",
            "Scrapes attempted.",
            ["collector", "target"],
            registry=registry,
        )
        self.failures = Counter(
            "cplane_collector_scrape_failures",
            "Scrapes that failed, by reason (timeout, too_large, parse, ...).",
            ["collector", "target", "reason"],
            registry=registry,
        )
        self.last_success = Gauge(
            "cplane_collector_last_success_timestamp_seconds",
            "Unix time of the target's last successful scrape.",
            ["collector", "target"],
            registry=registry,
        )
        self.buffer_samples = Gauge(
            "cplane_sink_buffer_samples",
            "Samples waiting in the sink's buffer for the store.",
            registry=registry,
        )
        self.buffer_capacity = Gauge(
            "cplane_sink_buffer_capacity_samples",
            "Size of the sink's buffer; samples beyond it are dropped.",
            registry=registry,
        )
        self.written = Counter(
            "cplane_sink_written_samples", "Samples written to the store.", registry=registry
        )
        self.dropped = Counter(
            "cplane_sink_dropped_samples",
            "Samples dropped because the buffer was full (store unreachable or too slow).",
            ["reason"],
            registry=registry,
        )
        self.write_failures = Counter(
            "cplane_sink_write_failures",
            "Batch writes that failed and will be retried.",
            registry=registry,
        )
        self.gpu_enabled = Gauge(
            "cplane_gpu_collector_enabled",
            "1 when the GPU collector reads NVML, 0 when it disabled itself (no NVML).",
            registry=registry,
        )
        self.dropped.labels("buffer_full")
        self.latest = LatestSamples()
        registry.register(self.latest)

    def observe_scrape(
        self, collector: str, target: str, *, duration_s: float, error: str | None, ts: float
    ) -> None:
        self.scrapes.labels(collector, target).inc()
        self.scrape_duration.labels(collector, target).observe(duration_s)
        if error is None:
            self.last_success.labels(collector, target).set(ts)
        else:
            self.failures.labels(collector, target, error).inc()

    def forget(self, collector: str, targets: Sequence[str]) -> None:
        """Drop the series of targets that are no longer scraped."""
        for metric in (self.scrapes, self.scrape_duration, self.last_success):
            for target in targets:
                try:
                    metric.remove(collector, target)
                except KeyError:
                    pass
