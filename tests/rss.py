"""The peak resident memory of another process while something runs, sampled with psutil."""

from __future__ import annotations

import threading
from types import TracebackType

import psutil


class PeakRss:
    """``with PeakRss(pid) as rss: ...``; afterwards ``rss.baseline`` and ``rss.peak`` (bytes).

    Sampled every few milliseconds, so a spike shorter than that could be missed; an
    allocation of tens of megabytes (a whole request body) lasts far longer.
    """

    def __init__(self, pid: int, interval_s: float = 0.002) -> None:
        self.process = psutil.Process(pid)
        self.interval_s = interval_s
        self.baseline = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss", daemon=True)

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.baseline) / 2**20

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakRss:
        self.baseline = self.process.memory_info().rss
        self.peak = self.baseline
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
