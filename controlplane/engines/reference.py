"""Adapter for the project's reference engine (``cplane-engine serve``).

The engine validates and switches configurations itself (build beside, switch atomically,
drain), so ``apply`` is one ``PUT /admin/config`` that returns when the new config serves.
Its metrics use vLLM's names, so its metric map is vLLM's plus two engine-specific series.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import ClassVar
from typing import cast

import httpx

from controlplane.domain import ConfigValue
from controlplane.domain import EngineConfig
from controlplane.domain import EngineTarget
from controlplane.domain import EngineUnreachableError
from controlplane.domain import Health
from controlplane.domain import Knob
from controlplane.domain import MetricMap
from controlplane.domain import MetricSource
from controlplane.domain import SearchSpace
from controlplane.domain import Series
from controlplane.domain.quality import GreedyAnswer
from controlplane.domain.quality import PositionScore
from controlplane.domain.quality import QualityMeasure
from controlplane.engines import openai_logprobs
from controlplane.engines.http import ModelName
from controlplane.engines.http import check_completion
from controlplane.engines.http import make_client
from controlplane.engines.http import probe
from controlplane.engines.http import request_json

# A switch builds new executors (and may quantize weights) before it returns.
APPLY_TIMEOUT = httpx.Timeout(120.0, connect=3.0)

REFERENCE_METRICS: MetricMap = {
    Series.requests_running: (MetricSource("vllm:num_requests_running", "gauge"),),
    Series.requests_waiting: (MetricSource("vllm:num_requests_waiting", "gauge"),),
    Series.request_latency: (MetricSource("vllm:e2e_request_latency_seconds", "histogram"),),
    Series.time_to_first_token: (MetricSource("vllm:time_to_first_token_seconds", "histogram"),),
    Series.queue_time: (MetricSource("vllm:request_queue_time_seconds", "histogram"),),
    Series.requests_succeeded: (
        MetricSource(
            "vllm:request_success", "counter", exclude={"finished_reason": ("error", "abort")}
        ),
    ),
    # Errors and aborts from vLLM's own counter, plus requests refused at admission (429):
    # counting engine_request_failures{reason="error"} too would count each error twice, and
    # reason="invalid" is the client's mistake, not the engine's.
    Series.requests_failed: (
        MetricSource(
            "vllm:request_success", "counter", match={"finished_reason": ("error", "abort")}
        ),
        MetricSource("engine_request_failures", "counter", match={"reason": ("rejected",)}),
    ),
    Series.prompt_tokens: (MetricSource("vllm:prompt_tokens", "counter"),),
    Series.generation_tokens: (MetricSource("vllm:generation_tokens", "counter"),),
    Series.batch_size: (MetricSource("engine_batch_size", "histogram"),),
}


class ReferenceAdapter:
    kind: ClassVar[str] = "reference"
    metric_map: ClassVar[MetricMap] = REFERENCE_METRICS
    quality_measures: ClassVar[frozenset[QualityMeasure]] = frozenset({"exact", "agreement", "kl"})
    # Batch size, streams and queue delay change which requests share a batch, which moves
    # results in the last bits only (measured in docs/quality.md): not quality knobs.
    quality_knobs: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, target: EngineTarget, *, client: httpx.Client | None = None) -> None:
        self.target = target
        self._client = client or make_client(target)
        self._space: SearchSpace | None = None
        self._model = ModelName()

    @property
    def metrics_url(self) -> str:
        return self.target.resolved_metrics_url

    def search_space(self) -> SearchSpace:
        if self._space is None:
            body = self._call("GET", "/admin/search-space")
            self._space = SearchSpace(tuple(_knob(k) for k in body["knobs"]))
        return self._space

    def current_config(self) -> EngineConfig:
        return _config(self._call("GET", "/admin/config"))

    def apply(self, changes: Mapping[str, ConfigValue]) -> EngineConfig:
        validated = self.search_space().validate(changes)
        return _config(self._call("PUT", "/admin/config", json=validated, timeout=APPLY_TIMEOUT))

    def health(self) -> Health:
        return probe(self._client, "/healthz")

    def check_inference(self, timeout_s: float) -> Health:
        return check_completion(self._client, timeout_s=timeout_s, model=self._model)

    def greedy(self, prompt: str, *, max_tokens: int, timeout_s: float) -> GreedyAnswer:
        return openai_logprobs.greedy(
            self._client,
            self._model,
            engine=self.target.name,
            prompt=prompt,
            max_tokens=max_tokens,
            timeout_s=timeout_s,
        )

    def score(
        self, tokens: Sequence[int], *, start: int, top_k: int, timeout_s: float
    ) -> tuple[PositionScore, ...]:
        return openai_logprobs.score(
            self._client,
            self._model,
            engine=self.target.name,
            tokens=tokens,
            start=start,
            top_k=top_k,
            timeout_s=timeout_s,
        )

    def close(self) -> None:
        self._client.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return request_json(self._client, method, path, engine=self.target.name, **kwargs)


def _knob(spec: Mapping[str, Any]) -> Knob:
    kind = spec.get("type")
    if kind not in ("int", "float", "choice"):
        raise EngineUnreachableError("engine search space has a knob of unknown type")
    return Knob(
        name=str(spec["name"]),
        kind=cast(Any, kind),
        choices=tuple(spec.get("choices") or ()),
        low=spec.get("min"),
        high=spec.get("max"),
        default=spec.get("default"),
        description=str(spec.get("description", "")),
    )


def _config(body: Any) -> EngineConfig:
    if not isinstance(body, dict):
        raise EngineUnreachableError("engine returned a config that is not a JSON object")
    return {str(k): v for k, v in body.items() if isinstance(v, int | float | str | bool)}
