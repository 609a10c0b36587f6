"""Assembly: the engine scraper, GPU and host collectors and the sink, started and stopped
together, in the API process (SQL writer) or in an agent (HTTP writer).

GPU and host readings share one thread on ``system_interval_s``; their latest values also
feed the ``/metrics`` export. Everything is built from :class:`CollectorSettings` and
explicit collaborators (writer, engine list, NVML module): nothing reads the environment.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from collections.abc import Sequence
from types import ModuleType

from prometheus_client import CollectorRegistry
from sqlalchemy.orm import Session

from collectors._engine_scraper import EngineScraper
from collectors._export import CollectorHealth
from collectors._gpu import GpuCollector
from collectors._host import HostCollector
from collectors._sink import SampleSink
from collectors._sink import Writer
from controlplane.domain import EngineTarget
from controlplane.domain import Sample
from controlplane.settings import CollectorSettings
from controlplane.store import engines as engine_store
from controlplane.store import samples as sample_store
from controlplane.store.database import SessionFactory

log = logging.getLogger(__name__)

TargetsProvider = Callable[[], Sequence[EngineTarget]]


def sql_writer(factory: SessionFactory) -> Writer:
    """Write each batch in its own transaction."""

    def write(batch: Sequence[Sample]) -> None:
        session: Session
        with factory() as session, session.begin():
            sample_store.insert_samples(session, batch)

    return write


def store_targets(factory: SessionFactory) -> TargetsProvider:
    """Every engine registered in the store."""

    def targets() -> list[EngineTarget]:
        with factory() as session, session.begin():
            return [engine_store.engine_target(r) for r in engine_store.list_engines(session)]

    return targets


class CollectorRuntime:
    """Owns the collector threads. ``start`` once, ``close`` once (idempotent)."""

    def __init__(
        self,
        settings: CollectorSettings,
        *,
        writer: Writer,
        targets: TargetsProvider,
        registry: CollectorRegistry | None = None,
        health: CollectorHealth | None = None,
        nvml: ModuleType | None = None,
        psutil_module: ModuleType | None = None,
        source: str | None = None,
    ) -> None:
        self.settings = settings
        self.health = health or CollectorHealth(registry or CollectorRegistry())
        self.sink = SampleSink(
            writer,
            health=self.health,
            capacity=settings.buffer_samples,
            batch_size=min(settings.batch_samples, settings.buffer_samples),
            flush_interval_s=settings.flush_interval_s,
        )
        self.scraper = EngineScraper(
            self.sink.offer,
            health=self.health,
            targets=targets,
            interval_s=settings.scrape_interval_s,
            fast_interval_s=settings.fast_interval_s,
            timeout_s=settings.scrape_timeout_s,
            max_bytes=settings.max_body_bytes,
            max_workers=settings.scrape_workers,
            refresh_s=settings.targets_refresh_s,
        )
        self.gpu: GpuCollector | None = None
        if settings.gpu:
            self.gpu = GpuCollector(nvml, source=source, on_enabled=self.health.gpu_enabled.set)
        else:
            self.health.gpu_enabled.set(0)
        self.host = (
            HostCollector(psutil_module, source=source, engines=self.scraper_targets)
            if settings.host
            else None
        )
        self._targets = targets
        self._stop = threading.Event()
        self._system: threading.Thread | None = None

    def scraper_targets(self) -> list[EngineTarget]:
        return [self.scraper.status(name).target for name in self.scraper.engines()]

    def start(self) -> None:
        self.sink.start()
        self.scraper.start()
        if self.gpu is not None:
            self.gpu.start()
        if self.gpu is not None or self.host is not None:
            self._system = threading.Thread(target=self._system_loop, name="system", daemon=True)
            self._system.start()

    def collect_system(self) -> list[Sample]:
        """One GPU + host reading, exported and offered to the sink."""
        ts = time.time()
        samples: list[Sample] = []
        for collector, prefix in ((self.gpu, "gpu_"), (self.host, "host_")):
            if collector is None:
                continue
            started = time.monotonic()
            reading = collector.collect(ts)
            self.health.latest.replace(prefix, reading)
            self.health.observe_scrape(
                "gpu" if prefix == "gpu_" else "host",
                collector.source,
                duration_s=time.monotonic() - started,
                error=None,
                ts=ts,
            )
            samples.extend(reading)
        if samples:
            self.sink.offer(samples)
        return samples

    def _system_loop(self) -> None:
        interval = self.settings.system_interval_s
        next_due = time.monotonic()
        while not self._stop.is_set():
            try:
                self.collect_system()
            except Exception:
                log.exception("system collection failed")
            next_due += interval
            self._stop.wait(max(0.0, next_due - time.monotonic()))

    def close(self) -> None:
        self._stop.set()
        if self._system is not None:
            self._system.join(5.0)
            self._system = None
        self.scraper.close()
        if self.gpu is not None:
            self.gpu.close()
        self.sink.close()
