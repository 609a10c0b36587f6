"""Host readings through psutil: CPU and memory of the machine, RSS and CPU time of each
engine process running on it.

Engine processes are found by the TCP port their URL names (the process listening on it),
for loopback and local addresses only; the PID is cached and re-resolved when the process
goes away (an engine restart). Engines on other machines are left to the agent there.
"""

from __future__ import annotations

import importlib
import logging
import socket
from collections.abc import Callable
from collections.abc import Sequence
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from controlplane.domain import EngineTarget
from controlplane.domain import Sample

log = logging.getLogger(__name__)

_LOCAL = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}


def _load_psutil() -> ModuleType:
    return importlib.import_module("psutil")


class HostCollector:
    """Reads the host once per :meth:`collect`; never raises."""

    def __init__(
        self,
        psutil_module: ModuleType | None = None,
        *,
        source: str | None = None,
        engines: Callable[[], Sequence[EngineTarget]] | None = None,
    ) -> None:
        self._ps: Any = psutil_module or _load_psutil()
        self.source = source or f"host:{socket.gethostname()}"
        self._engines = engines
        self._pids: dict[int, Any] = {}  # port -> psutil.Process
        self._ps.cpu_percent(interval=None)  # prime: the first call has no interval

    def collect(self, ts: float) -> list[Sample]:
        out: list[Sample] = []
        try:
            out.append(self._s(ts, "host_cpu_utilization_ratio", self._ps.cpu_percent(None) / 100))
            mem = self._ps.virtual_memory()
            out.append(self._s(ts, "host_memory_used_bytes", mem.used))
            out.append(self._s(ts, "host_memory_available_bytes", mem.available))
            out.append(self._s(ts, "host_memory_total_bytes", mem.total))
        except Exception as exc:
            log.warning("host reading failed: %s", exc)
        if self._engines is not None:
            try:
                targets = list(self._engines())
            except Exception as exc:
                log.warning("host collector: no engine list: %s", exc)
                targets = []
            for target in targets:
                self._engine(ts, target, out)
        return out

    def _s(self, ts: float, metric: str, value: float, **labels: str) -> Sample:
        return Sample(ts, self.source, metric, tuple(sorted(labels.items())), float(value))

    def _engine(self, ts: float, target: EngineTarget, out: list[Sample]) -> None:
        parts = urlsplit(target.url)
        if parts.hostname not in _LOCAL or parts.port is None:
            return
        proc = self._process(parts.port)
        if proc is None:
            return
        try:
            with proc.oneshot():
                rss = proc.memory_info().rss
                cpu = proc.cpu_times()
            out.append(
                self._s(ts, "host_engine_process_resident_memory_bytes", rss, engine=target.name)
            )
            out.append(
                self._s(
                    ts,
                    "host_engine_process_cpu_seconds_total",
                    cpu.user + cpu.system,
                    engine=target.name,
                )
            )
        except (self._ps.NoSuchProcess, self._ps.AccessDenied, self._ps.ZombieProcess):
            self._pids.pop(parts.port, None)

    def _process(self, port: int) -> Any:
        proc = self._pids.get(port)
        if proc is not None and proc.is_running():
            return proc
        self._pids.pop(port, None)
        try:
            for conn in self._ps.net_connections(kind="tcp"):
                if conn.status == "LISTEN" and conn.laddr and conn.laddr.port == port and conn.pid:
                    proc = self._ps.Process(conn.pid)
                    self._pids[port] = proc
                    return proc
        except (self._ps.AccessDenied, OSError) as exc:
            log.debug("cannot list connections: %s", exc)
        return None
