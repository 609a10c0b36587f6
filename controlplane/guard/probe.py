"""One scrape of an engine, reduced to the snapshot the decision rule reads. Fetching and
parsing are the collectors' (one implementation of both, with their size and time caps)."""

from __future__ import annotations

import time

import httpx

from collectors import FetchError
from collectors import ParseError
from collectors import fetch_text
from collectors import parse
from controlplane.domain.windows import Snapshot
from controlplane.engines.base import EngineAdapter

MAX_BODY_BYTES = 16 * 1024 * 1024


class MetricsProbe:
    def __init__(
        self, adapter: EngineAdapter, *, timeout_s: float = 1.0, url: str | None = None
    ) -> None:
        """``url``: another endpoint read with the adapter's metric map (one replica's)."""
        self._adapter = adapter
        self._timeout_s = timeout_s
        self._url = url
        self._client = httpx.Client()

    def snapshot(self) -> Snapshot | None:
        """The engine's counters now, or ``None`` when it could not be scraped."""
        now = time.time()
        try:
            text = fetch_text(
                self._client,
                self._url or self._adapter.metrics_url,
                timeout_s=self._timeout_s,
                max_bytes=MAX_BODY_BYTES,
            )
            samples = parse(
                text, source=self._adapter.target.name, metric_map=self._adapter.metric_map, ts=now
            )
        except (FetchError, ParseError):
            return None
        return Snapshot.of(samples, ts=now)

    def close(self) -> None:
        self._client.close()
