"""Bounded, batched delivery of samples to the store (or, in agent mode, to the server).

Producers (scrapers, the GPU and host collectors) call :meth:`SampleSink.offer`; one writer
thread takes up to ``batch_size`` samples at a time and hands them to ``write`` (one
transaction per batch). When the store is unreachable the batch stays at the head of the
buffer and is retried with backoff; the buffer fills, producers are held back for at most
``offer_timeout_s`` (back-pressure), and what still does not fit is dropped and counted in
``cplane_sink_dropped_samples_total``: nothing is lost silently, and a dead store never
grows memory without bound or stalls a scrape for long.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from collections.abc import Sequence

from collectors._export import CollectorHealth
from controlplane.domain import Sample

log = logging.getLogger(__name__)

Writer = Callable[[Sequence[Sample]], None]


class SampleSink:
    """Thread-safe; ``offer`` may be called from any thread."""

    def __init__(
        self,
        write: Writer,
        *,
        health: CollectorHealth,
        capacity: int = 200_000,
        batch_size: int = 5000,
        flush_interval_s: float = 1.0,
        offer_timeout_s: float = 0.1,
        max_backoff_s: float = 5.0,
    ) -> None:
        if capacity < batch_size:
            raise ValueError("capacity must hold at least one batch")
        self._write = write
        self._health = health
        self.capacity = capacity
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.offer_timeout_s = offer_timeout_s
        self.max_backoff_s = max_backoff_s
        self._buf: deque[Sample] = deque()
        self._in_flight = 0
        self._cond = threading.Condition()
        self._stop = False
        self._urgent = False
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.written = 0
        self.failures = 0
        self.last_error: str | None = None
        health.buffer_capacity.set(capacity)

    # --- producers -------------------------------------------------------------------

    def offer(self, samples: Sequence[Sample], *, timeout_s: float | None = None) -> int:
        """Queue samples; waits up to ``timeout_s`` for room, drops the rest. Returns how
        many were accepted."""
        wait = self.offer_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + wait
        accepted = 0
        with self._cond:
            pending = list(samples)
            while pending:
                room = self.capacity - len(self._buf) - self._in_flight
                if room > 0:
                    take, pending = pending[:room], pending[room:]
                    self._buf.extend(take)
                    accepted += len(take)
                    self._cond.notify_all()
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stop:
                    break
                self._cond.wait(remaining)
            if pending:
                self.dropped += len(pending)
                self._health.dropped.labels("buffer_full").inc(len(pending))
                log.warning("sink buffer full: dropped %d samples", len(pending))
            self._health.buffer_samples.set(len(self._buf) + self._in_flight)
        return accepted

    @property
    def depth(self) -> int:
        with self._cond:
            return len(self._buf) + self._in_flight

    # --- writer thread ---------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sample-sink", daemon=True)
            self._thread.start()

    def _next_batch(self) -> list[Sample] | None:
        with self._cond:
            deadline = time.monotonic() + self.flush_interval_s
            while not (self._stop or self._urgent) and len(self._buf) < self.batch_size:
                remaining = deadline - time.monotonic()
                if remaining <= 0 and self._buf:
                    break
                self._cond.wait(remaining if remaining > 0 else self.flush_interval_s)
            if not self._buf:
                self._urgent = False
                return None
            n = min(self.batch_size, len(self._buf))
            batch = [self._buf.popleft() for _ in range(n)]
            self._in_flight = n
            return batch

    def _run(self) -> None:
        backoff = 0.1
        while True:
            batch = self._next_batch()
            if batch is None:
                if self._stop:
                    return
                continue
            if self._deliver(batch):
                backoff = 0.1
                continue
            # Keep the batch at the head and wait before retrying; stop gives up.
            with self._cond:
                self._buf.extendleft(reversed(batch))
                self._in_flight = 0
                if self._stop:
                    return
                self._cond.wait(backoff)
            backoff = min(self.max_backoff_s, backoff * 2)

    def _deliver(self, batch: list[Sample]) -> bool:
        try:
            self._write(batch)
        except Exception as exc:  # the store's failures are many; all mean "retry later"
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._health.write_failures.inc()
            log.warning("sink write of %d samples failed: %s", len(batch), self.last_error)
            return False
        with self._cond:
            self._in_flight = 0
            self.written += len(batch)
            self._health.written.inc(len(batch))
            self._health.buffer_samples.set(len(self._buf))
            self._cond.notify_all()
        return True

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything offered so far is written; ``False`` on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._urgent = True
            self._cond.notify_all()
            while self._buf or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.05))
        return True

    def close(self, timeout_s: float = 5.0) -> None:
        """Write what is buffered (up to ``timeout_s``), then stop the writer thread."""
        if self._thread is not None:
            self.flush(timeout_s)
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
