"""Background load for the engine benchmarks: the project's load generator in short runs
(Poisson arrivals) until stopped, so every request sent is counted, none cut off."""

from __future__ import annotations

import threading

from tuner.loadgen import LoadResult
from tuner.loadgen import LoadSpec
from tuner.loadgen import RequestShape
from tuner.loadgen import run_load_sync


class BackgroundLoad:
    def __init__(self, url: str, *, rate: float, model: str = "tiny") -> None:
        self._spec = LoadSpec(
            base_url=url,
            model=model,
            mode="poisson",
            rate=rate,
            duration_s=2.0,
            shapes=(RequestShape(prompt_len=16, max_tokens=8),),
            extra_body={"ignore_eos": True},
        )
        self._stop = threading.Event()
        self.results: list[LoadResult] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.results.append(run_load_sync(self._spec))

    def stop(self) -> list[LoadResult]:
        self._stop.set()
        self._thread.join(timeout=120)
        return self.results

    @property
    def sent(self) -> int:
        return sum(r.sent for r in self.results)

    @property
    def failed(self) -> int:
        return sum(r.sent - r.ok for r in self.results)
