"""Agent mode: the collectors alone on a GPU node, pushing batches to the control plane.

Each batch is POSTed to ``/api/v1/ingest`` with an ``Idempotency-Key`` chosen once per
batch: a push whose answer was lost is retried with the same key, and the server stores it
at most once. A 4xx other than 408/429 means the batch itself is wrong: it is logged and
dropped (counted) instead of retried forever; anything else is retried by the sink with
backoff, so the node's buffer absorbs a control-plane outage up to its capacity.

The engines come from the control plane (``GET /api/v1/engines``), optionally narrowed to
names given on the command line.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

import httpx

from collectors._runtime import CollectorRuntime
from controlplane.domain import EngineTarget
from controlplane.domain import Sample
from controlplane.domain import ValidationError
from controlplane.settings import CollectorSettings

log = logging.getLogger(__name__)


class PushRejected(Exception):
    """The server refused the batch as invalid; retrying cannot help."""


def sample_json(s: Sample) -> dict[str, Any]:
    return {
        "ts": s.ts,
        "source": s.source,
        "metric": s.metric,
        "labels": dict(s.labels),
        "value": s.value,
    }


class Pusher:
    """The agent's sink writer: one HTTP POST per batch, idempotent under retries."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client
        self._keys: dict[int, str] = {}
        self.rejected = 0

    def __call__(self, batch: Sequence[Sample]) -> None:
        # The sink retries the same list object, so its id identifies the batch.
        key = self._keys.setdefault(id(batch), uuid.uuid4().hex)
        body = {"samples": [sample_json(s) for s in batch]}
        response = self._client.post("/api/v1/ingest", json=body, headers={"Idempotency-Key": key})
        if response.status_code in (200, 201):
            self._keys.pop(id(batch), None)
            return
        if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
            self._keys.pop(id(batch), None)
            self.rejected += len(batch)
            log.error("server rejected a batch of %d samples: %s", len(batch), response.text[:300])
            return
        raise PushRejected(f"HTTP {response.status_code}: {response.text[:200]}")


def _targets(client: httpx.Client, only: frozenset[str]) -> list[EngineTarget]:
    response = client.get("/api/v1/engines")
    response.raise_for_status()
    found = []
    for e in response.json():
        if only and e["name"] not in only:
            continue
        found.append(
            EngineTarget(
                name=e["name"], kind=e["kind"], url=e["url"], metrics_url=e.get("metrics_url")
            )
        )
    return found


def build_agent(
    server: str,
    token: str,
    settings: CollectorSettings,
    *,
    engines: Sequence[str] = (),
    source: str | None = None,
) -> tuple[CollectorRuntime, httpx.Client]:
    """A runtime whose sink pushes to ``server``; the caller starts and closes both.

    Raises:
        ValidationError: the server URL or token is unusable.
    """
    try:
        url = httpx.URL(server)
    except httpx.InvalidURL as exc:
        raise ValidationError(f"--server {server!r} is not a URL: {exc}", field="server") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ValidationError(f"--server {server!r} must be an http(s) URL", field="server")
    if not token.strip():
        raise ValidationError("--token must not be empty", field="token")
    client = httpx.Client(
        base_url=url,
        headers={"Authorization": f"Bearer {token.strip()}"},
        timeout=httpx.Timeout(settings.push_timeout_s, connect=min(3.0, settings.push_timeout_s)),
    )
    only = frozenset(engines)
    runtime = CollectorRuntime(
        settings,
        writer=Pusher(client),
        targets=lambda: _targets(client, only),
        source=source,
    )
    return runtime, client
