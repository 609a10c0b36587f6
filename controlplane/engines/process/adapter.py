"""``kind=process``: the adapter over a :class:`Supervisor` running on this node.

The supervisor owns the processes and lives as long as they do (the control plane process
that started them, or ``cplane agent`` on a GPU node); adapters are short-lived views of it,
found by engine name in :mod:`controlplane.engines.process.running`. Traffic, the health
check and the inference check go through the proxy, the path users take; metrics come from
replica 0's own frontend, so a scrape never mixes counters of two processes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import httpx

from controlplane.domain import ConfigValue
from controlplane.domain import EngineConfig
from controlplane.domain import EngineTarget
from controlplane.domain import Health
from controlplane.domain import MetricMap
from controlplane.domain import SearchSpace
from controlplane.engines.http import DEFAULT_TIMEOUT
from controlplane.engines.http import ModelName
from controlplane.engines.http import check_completion
from controlplane.engines.http import probe
from controlplane.engines.metric_maps import SGLANG_METRICS
from controlplane.engines.metric_maps import TGI_METRICS
from controlplane.engines.metric_maps import VLLM_METRICS
from controlplane.engines.process import running
from controlplane.engines.process.supervisor import Supervisor
from controlplane.engines.reference import REFERENCE_METRICS


class ProcessAdapter:
    kind: ClassVar[str] = "process"
    metric_map: ClassVar[MetricMap] = REFERENCE_METRICS

    def __init__(self, target: EngineTarget, supervisor: Supervisor) -> None:
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
        return self.supervisor.apply(changes)

    def health(self) -> Health:
        return probe(self._client, self.supervisor.preset.health_path)

    def check_inference(self, timeout_s: float) -> Health:
        return check_completion(self._client, timeout_s=timeout_s, model=self._model)

    def close(self) -> None:
        self._client.close()

    # -- ReplicatedEngine: what a canary needs -----------------------------------------

    @property
    def replica_count(self) -> int:
        return self.supervisor.spec.replicas

    def replica_metrics_url(self, index: int) -> str:
        return f"{self.supervisor.replica_url(index)}/metrics"

    def replica_config(self, index: int) -> EngineConfig:
        return self.supervisor.config(index)

    def apply_replica(self, index: int, changes: Mapping[str, ConfigValue]) -> EngineConfig:
        return self.supervisor.switch_replica(index, changes)

    def set_traffic_share(self, index: int, share: float | None) -> float:
        return self.supervisor.set_share(index, share)


class VllmProcessAdapter(ProcessAdapter):
    metric_map: ClassVar[MetricMap] = VLLM_METRICS


class SglangProcessAdapter(ProcessAdapter):
    metric_map: ClassVar[MetricMap] = SGLANG_METRICS


class TgiProcessAdapter(ProcessAdapter):
    metric_map: ClassVar[MetricMap] = TGI_METRICS


_BY_PRESET: dict[str, type[ProcessAdapter]] = {
    "reference": ProcessAdapter,
    "vllm": VllmProcessAdapter,
    "sglang": SglangProcessAdapter,
    "tgi": TgiProcessAdapter,
}


def process_adapter(target: EngineTarget) -> ProcessAdapter:
    """The registry's factory for ``kind=process``.

    Raises:
        ValidationError: no supervisor runs this engine in this process.
    """
    supervisor = running.supervisor_for(target.name)
    return _BY_PRESET[supervisor.preset.name](target, supervisor)
