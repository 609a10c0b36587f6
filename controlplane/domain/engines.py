"""What the layers above need to know about an engine, without knowing its kind.

:class:`EngineTarget` is the frozen description an adapter is built from (never an ORM row).
:class:`Series` names the control plane's canonical series; each adapter maps its engine's
own metric names onto them with :class:`MetricSource` entries, converting units to seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from enum import StrEnum
from typing import Literal


@dataclass(frozen=True)
class EngineTarget:
    name: str
    kind: str
    url: str
    metrics_url: str | None = None
    admin_token: str | None = field(default=None, repr=False)

    @property
    def resolved_metrics_url(self) -> str:
        return self.metrics_url or f"{self.url.rstrip('/')}/metrics"


class Series(StrEnum):
    """Canonical series. Latencies are histograms in seconds; counters are cumulative."""

    requests_running = "requests_running"
    requests_waiting = "requests_waiting"
    request_latency = "request_latency_seconds"
    time_to_first_token = "time_to_first_token_seconds"
    queue_time = "queue_time_seconds"
    requests_succeeded = "requests_succeeded_total"
    requests_failed = "requests_failed_total"
    prompt_tokens = "prompt_tokens_total"
    generation_tokens = "generation_tokens_total"
    batch_size = "batch_size"
    kv_cache_usage = "kv_cache_usage_ratio"


MetricType = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True)
class MetricSource:
    """Where a canonical series comes from in one engine's exposition.

    ``name`` is the family name as the Prometheus parser reports it (counters without
    ``_total``); ``scale`` converts the engine's unit to the canonical one (1e-6 for
    microseconds); ``match`` keeps only samples whose label has one of the given values and
    ``exclude`` drops them (vLLM counts errors among ``request_success`` with
    ``finished_reason="error"``).
    """

    name: str
    type: MetricType
    scale: float = 1.0
    match: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    exclude: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def accepts(self, labels: Mapping[str, str]) -> bool:
        for key, values in self.match.items():
            if labels.get(key) not in values:
                return False
        return all(labels.get(key) not in values for key, values in self.exclude.items())


MetricMap = Mapping[Series, tuple[MetricSource, ...]]


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str
    latency_s: float | None = None
