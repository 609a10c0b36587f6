"""Scrape every registered engine's ``/metrics`` on its own schedule.

One scheduler thread keeps a due time per engine and hands due scrapes to a thread pool;
an engine never has two scrapes in flight (a scrape still running when the next is due is
skipped and counted), so a slow engine costs one worker for at most ``timeout_s`` while
the others keep their schedule. Each scrape: fetch (bounded in time and size), parse with
the engine kind's metric map, offer the samples to the sink. A failed scrape (timeout,
size cap, HTTP error, garbage, HTML, truncation) is counted by reason; the engine's last
good samples stay readable through :meth:`EngineScraper.latest`. The log gets one line when
an engine's scrapes change state (first failure after success or at start: down; first
success after failures: up again), never one per failed scrape: the per-reason failure
counter and the last-success gauge on ``/metrics`` carry the rest.

The guard calls :meth:`EngineScraper.set_fast` for an engine under rollout: it is then
scraped every ``fast_interval_s`` (default 0.5 s) instead of ``interval_s`` (5 s).
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field

import httpx

from collectors._export import CollectorHealth
from collectors._fetch import FetchError
from collectors._fetch import fetch_text
from collectors._parse import ParseError
from collectors._parse import parse
from controlplane.domain import DomainError
from controlplane.domain import EngineTarget
from controlplane.domain import Sample
from controlplane.domain import redact_urls_in
from controlplane.engines.metric_maps import metric_map_for

log = logging.getLogger(__name__)

TargetsProvider = Callable[[], Sequence[EngineTarget]]
Offer = Callable[[Sequence[Sample]], object]


@dataclass
class EngineStatus:
    """What the scraper knows about one engine; a copy is returned to readers."""

    target: EngineTarget
    scrapes: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    skipped: int = 0
    last_error: str | None = None
    last_success: float | None = None
    last_duration_s: float | None = None
    last_good: tuple[Sample, ...] = field(default=(), repr=False)
    fast: bool = False
    in_flight: bool = False
    # None until the first scrape; the log follows changes of this, not every scrape.
    up: bool | None = None


class EngineScraper:
    """Thread-safe. Build, :meth:`start`, and :meth:`close` when done."""

    def __init__(
        self,
        offer: Offer,
        *,
        health: CollectorHealth,
        targets: TargetsProvider | None = None,
        interval_s: float = 5.0,
        fast_interval_s: float = 0.5,
        timeout_s: float = 2.0,
        max_bytes: int = 10 * 1024 * 1024,
        max_workers: int = 16,
        refresh_s: float = 10.0,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._offer = offer
        self._health = health
        self._provider = targets
        self.interval_s = interval_s
        self.fast_interval_s = fast_interval_s
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.refresh_s = refresh_s
        self._clock = clock
        self._client = client or httpx.Client(follow_redirects=False)
        self._own_client = client is None
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="scrape")
        self._lock = threading.Condition()
        self._status: dict[str, EngineStatus] = {}
        self._due: list[tuple[float, int, str]] = []
        self._seq = 0
        self._stop = False
        self._thread: threading.Thread | None = None
        self._next_refresh = 0.0

    # --- targets ---------------------------------------------------------------------

    def set_targets(self, targets: Sequence[EngineTarget]) -> None:
        """Replace the set of engines; new ones are scraped at once, gone ones forgotten."""
        now = time.monotonic()
        with self._lock:
            wanted = {t.name: t for t in targets}
            gone = [name for name in self._status if name not in wanted]
            for name in gone:
                del self._status[name]
            for name, target in wanted.items():
                status = self._status.get(name)
                if status is None:
                    self._status[name] = EngineStatus(target)
                    self._schedule(name, now)
                elif status.target != target:
                    status.target = target
            self._lock.notify_all()
        if gone:
            self._health.forget("engine", gone)

    def set_fast(self, engine: str, fast: bool = True) -> None:
        """Scrape ``engine`` every ``fast_interval_s`` (rollout) or back at ``interval_s``.

        Raises:
            KeyError: the engine is not being scraped.
        """
        with self._lock:
            status = self._status[engine]
            if status.fast != fast:
                status.fast = fast
                if fast:
                    self._schedule(engine, time.monotonic())
                self._lock.notify_all()

    def status(self, engine: str) -> EngineStatus:
        with self._lock:
            s = self._status[engine]
            return EngineStatus(**vars(s))

    def latest(self, engine: str) -> tuple[Sample, ...]:
        """The samples of the engine's last successful scrape (kept through failures)."""
        with self._lock:
            return self._status[engine].last_good

    def engines(self) -> list[str]:
        with self._lock:
            return sorted(self._status)

    # --- scheduling ------------------------------------------------------------------

    def _schedule(self, name: str, when: float) -> None:
        self._seq += 1
        heapq.heappush(self._due, (when, self._seq, name))

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="engine-scraper", daemon=True)
            self._thread.start()

    def _refresh(self) -> None:
        if self._provider is None or time.monotonic() < self._next_refresh:
            return
        self._next_refresh = time.monotonic() + self.refresh_s
        try:
            self.set_targets(self._provider())
        except Exception as exc:  # the store may be down; keep scraping the known engines
            log.warning("could not refresh the engine list: %s", exc)

    def _run(self) -> None:
        while True:
            self._refresh()
            with self._lock:
                if self._stop:
                    return
                now = time.monotonic()
                due: list[str] = []
                while self._due and self._due[0][0] <= now:
                    _, _, name = heapq.heappop(self._due)
                    if name in self._status and name not in due:
                        due.append(name)
                for name in due:
                    status = self._status[name]
                    interval = self.fast_interval_s if status.fast else self.interval_s
                    # Next due time from the schedule, not from completion: no drift.
                    self._schedule(name, now + interval)
                    if status.in_flight:
                        status.skipped += 1
                        continue
                    status.in_flight = True
                    self._pool.submit(self._scrape, name, status.target)
                wait = (self._due[0][0] - now) if self._due else self.refresh_s
                if self._provider is not None:
                    wait = min(wait, max(0.0, self._next_refresh - now))
                self._lock.wait(max(0.0, min(wait, self.refresh_s)))

    def scrape_now(self, engine: str) -> EngineStatus:
        """Scrape one engine synchronously (CLI, tests); returns its status after."""
        with self._lock:
            target = self._status[engine].target
            self._status[engine].in_flight = True
        self._scrape(engine, target)
        return self.status(engine)

    def _scrape(self, name: str, target: EngineTarget) -> None:
        started = time.monotonic()
        ts = self._clock()
        error: str | None = None
        samples: list[Sample] = []
        try:
            metric_map = metric_map_for(target.kind)
            text = fetch_text(
                self._client,
                target.resolved_metrics_url,
                timeout_s=self.timeout_s,
                max_bytes=self.max_bytes,
            )
            samples = parse(text, source=name, metric_map=metric_map, ts=ts)
        except FetchError as exc:
            error, message = exc.reason, str(exc)
        except ParseError as exc:
            error, message = "parse", str(exc)
        except DomainError as exc:
            error, message = "config", str(exc)
        except Exception as exc:  # never let one engine kill a worker silently
            error, message = "internal", f"{type(exc).__name__}: {exc}"
            log.exception("scrape of %s failed unexpectedly", name)
        duration = time.monotonic() - started
        went: str | None = None
        failed_for = 0
        with self._lock:
            status = self._status.get(name)
            if status is not None:
                now_up = error is None
                if status.up is None and not now_up or status.up is True and not now_up:
                    went = "down"
                elif status.up is False and now_up:
                    went, failed_for = "up", status.consecutive_failures
                status.up = now_up
                status.in_flight = False
                status.scrapes += 1
                status.last_duration_s = duration
                if error is None:
                    status.consecutive_failures = 0
                    status.last_success = ts
                    status.last_good = tuple(samples)
                else:
                    status.failures += 1
                    status.consecutive_failures += 1
                    status.last_error = f"{error}: {message}"
                self._lock.notify_all()
        self._health.observe_scrape("engine", name, duration_s=duration, error=error, ts=ts)
        if went == "down":
            log.warning(
                "engine %s is down: scrape failed (%s): %s (further failures are counted, "
                "not logged, until it is back)",
                name,
                error,
                redact_urls_in(message),
            )
        elif went == "up":
            log.info("engine %s is back: scrape succeeded after %d failures", name, failed_for)
        if error is None and samples:
            self._offer(samples)

    def close(self) -> None:
        with self._lock:
            self._stop = True
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._own_client:
            self._client.close()
