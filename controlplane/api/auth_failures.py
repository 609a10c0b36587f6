"""Refused requests (401 no or bad token, 403 role too low): counted on ``/metrics`` and
logged at most once per interval, with how many were refused since the last line, so a
credential-stuffing client shows up without flooding the log. Tokens are never logged."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from fastapi import FastAPI
from fastapi import Request
from prometheus_client import CollectorRegistry
from prometheus_client import Counter

log = logging.getLogger(__name__)

LOG_INTERVAL_S = 60.0


class AuthFailures:
    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        log_interval_s: float = LOG_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.counter = Counter(
            "cplane_api_auth_failures",
            "API requests refused: 401 missing or invalid token, 403 role too low.",
            ["status"],
            registry=registry,
        )
        self._interval = log_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._next_log = float("-inf")
        self._suppressed = 0

    def record(self, request: Request, status: int, reason: str) -> None:
        self.counter.labels(status=str(status)).inc()
        now = self._clock()
        with self._lock:
            if now < self._next_log:
                self._suppressed += 1
                return
            suppressed, self._suppressed = self._suppressed, 0
            self._next_log = now + self._interval
        client = request.client.host if request.client else "unknown"
        more = f" (+{suppressed} more since the last report)" if suppressed else ""
        log.warning(
            "refused %s %s from %s with %d: %s%s",
            request.method,
            request.url.path,
            client,
            status,
            reason,
            more,
        )


def install(app: FastAPI) -> None:
    """After ``collectors.install``: the counter lives in the app's metrics registry."""
    app.state.auth_failures = AuthFailures(app.state.metrics_registry)


def record(request: Request, status: int, reason: str) -> None:
    failures: AuthFailures | None = getattr(request.app.state, "auth_failures", None)
    if failures is not None:
        failures.record(request, status, reason)
