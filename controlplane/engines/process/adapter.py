"""``kind=process``: the adapter over the supervisor that owns an engine's processes.

The supervisor lives as long as the processes do: in this process (found by engine name in
:mod:`controlplane.engines.process.running`), or on the engine's node under ``cplane engine
supervise``, reached through its control API on the engine's own URL with the engine's
admin token. Traffic, the health check and the inference check go through the proxy, the
path users take; metrics come from replica 0's own frontend, so a scrape never mixes
counters of two processes.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from typing import ClassVar
from typing import Protocol

import httpx

from controlplane.domain import ConfigValue
from controlplane.domain import EngineConfig
from controlplane.domain import EngineRejectedError
from controlplane.domain import EngineTarget
from controlplane.domain import Health
from controlplane.domain import MetricMap
from controlplane.domain import SearchSpace
from controlplane.domain.quality import GreedyAnswer
from controlplane.domain.quality import PositionScore
from controlplane.domain.quality import QualityMeasure
from controlplane.engines import openai_logprobs
from controlplane.engines.http import DEFAULT_TIMEOUT
from controlplane.engines.http import ModelName
from controlplane.engines.http import check_completion
from controlplane.engines.http import probe
from controlplane.engines.metric_maps import SGLANG_METRICS
from controlplane.engines.metric_maps import TGI_METRICS
from controlplane.engines.metric_maps import VLLM_METRICS
from controlplane.engines.process import running
from controlplane.engines.process.control import RemoteSupervisor
from controlplane.engines.process.presets import Preset
from controlplane.engines.reference import REFERENCE_METRICS


class Fleet(Protocol):
    """What the adapter needs of a supervisor, local or remote."""

    preset: Preset

    @property
    def url(self) -> str: ...

    @property
    def replica_count(self) -> int: ...

    def replica_url(self, index: int) -> str: ...

    def config(self, index: int = 0) -> EngineConfig: ...

    def apply(self, changes: Mapping[str, ConfigValue]) -> EngineConfig: ...

    def switch_replica(self, index: int, changes: Mapping[str, ConfigValue]) -> EngineConfig: ...

    def set_share(self, index: int, share: float | None) -> float: ...


class ProcessAdapter:
    kind: ClassVar[str] = "process"
    metric_map: ClassVar[MetricMap] = REFERENCE_METRICS
    # The reference engine and vLLM score text through /v1/completions with echo, logprobs
    # and token ids (openai_logprobs); the presets of engines without that API clear these.
    quality_measures: ClassVar[frozenset[QualityMeasure]] = frozenset({"exact", "agreement", "kl"})
    quality_knobs: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, target: EngineTarget, supervisor: Fleet) -> None:
        self.target = target
        self.supervisor = supervisor
        self._client = httpx.Client(base_url=supervisor.url, timeout=DEFAULT_TIMEOUT)
        self._model = ModelName()

    @property
    def metrics_url(self) -> str:
        return f"{self.supervisor.replica_url(0)}/metrics"

    def search_space(self) -> SearchSpace:
        return self.supervisor.preset.search_space()

    def current_config(self) -> EngineConfig:
        return self.supervisor.config(0)

    def apply(self, changes: Mapping[str, ConfigValue]) -> EngineConfig:
        # Refused here, before anything reaches the node.
        return self.supervisor.apply(self.search_space().validate(changes))

    def health(self) -> Health:
        return probe(self._client, self.supervisor.preset.health_path)

    def check_inference(self, timeout_s: float) -> Health:
        return check_completion(self._client, timeout_s=timeout_s, model=self._model)

    def greedy(self, prompt: str, *, max_tokens: int, timeout_s: float) -> GreedyAnswer:
        if not self.quality_measures:
            raise EngineRejectedError(f"engine {self.target.name!r}: no quality probe for it")
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
        if "kl" not in self.quality_measures:
            raise EngineRejectedError(f"engine {self.target.name!r}: no logprobs to score with")
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
        if isinstance(self.supervisor, RemoteSupervisor):
            self.supervisor.close()

    # -- ReplicatedEngine: what a canary needs -----------------------------------------

    @property
    def replica_count(self) -> int:
        return self.supervisor.replica_count

    def replica_metrics_url(self, index: int) -> str:
        return f"{self.supervisor.replica_url(index)}/metrics"

    def replica_config(self, index: int) -> EngineConfig:
        return self.supervisor.config(index)

    def apply_replica(self, index: int, changes: Mapping[str, ConfigValue]) -> EngineConfig:
        return self.supervisor.switch_replica(index, self.search_space().validate(changes))

    def set_traffic_share(self, index: int, share: float | None) -> float:
        return self.supervisor.set_share(index, share)


class VllmProcessAdapter(ProcessAdapter):
    metric_map: ClassVar[MetricMap] = VLLM_METRICS


class SglangProcessAdapter(ProcessAdapter):
    metric_map: ClassVar[MetricMap] = SGLANG_METRICS
    # SGLang's completions do not name tokens by id (vLLM's return_tokens_as_token_ids).
    quality_measures: ClassVar[frozenset[QualityMeasure]] = frozenset()


class TgiProcessAdapter(ProcessAdapter):
    metric_map: ClassVar[MetricMap] = TGI_METRICS
    # TGI's OpenAI-style API has no echo of prompt log-probabilities.
    quality_measures: ClassVar[frozenset[QualityMeasure]] = frozenset()


_BY_PRESET: dict[str, type[ProcessAdapter]] = {
    "reference": ProcessAdapter,
    "vllm": VllmProcessAdapter,
    "sglang": SglangProcessAdapter,
    "tgi": TgiProcessAdapter,
}


def process_adapter(target: EngineTarget) -> ProcessAdapter:
    """The registry's factory for ``kind=process``: the supervisor in this process, or the
    one behind the engine's URL.

    Raises:
        ValidationError: no supervisor here and no admin token to reach a remote one.
        EngineUnreachableError: the remote supervisor did not answer.
    """
    supervisor: Fleet
    if running.is_running(target.name):
        supervisor = running.supervisor_for(target.name)
    elif target.admin_token:
        supervisor = RemoteSupervisor(target)
    else:
        supervisor = running.supervisor_for(target.name)  # raises, naming both ways
    return _BY_PRESET[supervisor.preset.name](target, supervisor)
