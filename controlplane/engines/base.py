"""The engine adapter protocol: the one way the control plane talks to an inference engine.

Every engine kind (the reference engine, Triton, a process-managed vLLM) implements these few
operations; nothing above layer 1 knows which kind it talks to. Knob names are canonical
across kinds where the concept is shared: ``max_batch_size``, ``streams`` (concurrent model
instances / CUDA streams), ``precision``; adapters may add their own.

Adapters are synchronous (the guard, the tuner and APScheduler 3 are), hold one HTTP client
each, and are safe to call from one thread at a time. Build them with
:func:`controlplane.engines.registry.adapter_for`; close them when done.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from typing import ClassVar
from typing import Protocol
from typing import runtime_checkable

from controlplane.domain import ConfigValue
from controlplane.domain import EngineConfig
from controlplane.domain import EngineTarget
from controlplane.domain import Health
from controlplane.domain import MetricMap
from controlplane.domain import SearchSpace
from controlplane.domain.quality import GreedyAnswer
from controlplane.domain.quality import PositionScore
from controlplane.domain.quality import QualityMeasure


@runtime_checkable
class EngineAdapter(Protocol):
    kind: ClassVar[str]
    target: EngineTarget
    metric_map: ClassVar[MetricMap]

    @property
    def metrics_url(self) -> str:
        """The engine's Prometheus endpoint."""
        ...

    def search_space(self) -> SearchSpace:
        """The knobs this engine supports and their legal values on its hardware.

        Raises:
            EngineUnreachableError: the engine did not answer.
        """
        ...

    def current_config(self) -> EngineConfig:
        """The configuration the engine serves with now, as the engine reports it.

        Raises:
            EngineUnreachableError: the engine did not answer.
        """
        ...

    def apply(self, changes: Mapping[str, ConfigValue]) -> EngineConfig:
        """Change the live configuration; returns only when the engine serves with it.

        ``changes`` may be partial: absent knobs keep their values. Validated against
        :meth:`search_space` before the engine is touched. On any error the engine keeps
        serving its previous configuration (the engine's own guarantee, or the adapter's).

        Returns:
            The full configuration now being served.

        Raises:
            ValidationError: an unknown knob or an illegal value (nothing was sent).
            EngineRejectedError: the engine refused the configuration.
            EngineUnreachableError: the engine did not answer; its state is unknown.
        """
        ...

    def health(self) -> Health:
        """Whether the engine answers its health check; never raises."""
        ...

    def check_inference(self, timeout_s: float) -> Health:
        """Serve one real inference request and judge the answer; never raises.

        A tiny greedy completion (one or two tokens) through the engine's own inference API,
        the path users take, so a health endpoint that answers while inference is broken
        does not pass. ``ok`` only when the whole answer arrives within ``timeout_s`` and has
        the expected shape (a choice with text, a finish reason, the tokens counted); the
        ``detail`` of a failure says which of timeout, error or wrong shape it was.

        Returns:
            ``Health`` with ``latency_s`` the request's duration (``None`` when no answer).
        """
        ...

    quality_measures: ClassVar[frozenset[QualityMeasure]]
    """The quality measures this kind can provide (:mod:`controlplane.domain.quality`):
    ``exact`` and ``agreement`` need :meth:`greedy`; ``kl`` also needs :meth:`score`, i.e.
    an engine that returns ``logprobs``. Empty: the kind cannot be probed, and a quality
    spec for it is refused when it is set."""

    quality_knobs: ClassVar[frozenset[str]]
    """Knobs besides ``precision`` (always) whose change may alter what the model answers;
    the guard runs the quality probe during the bake of a change that touches one."""

    def greedy(self, prompt: str, *, max_tokens: int, timeout_s: float) -> GreedyAnswer:
        """Decode ``prompt`` greedily (temperature 0) through the engine's inference API.

        Returns:
            The prompt's token ids as the engine tokenized them, the answer's token ids and
            the finish reason.

        Raises:
            EngineUnreachableError: no answer, or one without token ids.
            EngineRejectedError: the engine refused the request.
        """
        ...

    def score(
        self, tokens: Sequence[int], *, start: int, top_k: int, timeout_s: float
    ) -> tuple[PositionScore, ...]:
        """Teacher-forced scores of ``tokens[start:]``: for each position, the engine's
        log-probability of that token given everything before it, and its top ``top_k``
        alternatives. Only for kinds whose :attr:`quality_measures` hold ``kl``.

        Raises:
            EngineUnreachableError: no answer, or one without log-probabilities.
            EngineRejectedError: the engine refused the request (e.g. no ``logprobs``).
        """
        ...

    def close(self) -> None:
        """Release the HTTP client."""
        ...


@runtime_checkable
class ReplicatedEngine(Protocol):
    """An engine served by several replicas behind a proxy the adapter drives: what a canary
    rollout needs beyond :class:`EngineAdapter`. Replica indices run from 0 to
    ``replica_count - 1``."""

    @property
    def replica_count(self) -> int: ...

    def replica_metrics_url(self, index: int) -> str:
        """One replica's own Prometheus endpoint (never a mix of replicas)."""
        ...

    def replica_config(self, index: int) -> EngineConfig:
        """The configuration replica ``index`` serves now."""
        ...

    def apply_replica(self, index: int, changes: Mapping[str, ConfigValue]) -> EngineConfig:
        """Change one replica's configuration; the others keep theirs. Same guarantees and
        errors as :meth:`EngineAdapter.apply`."""
        ...

    def set_traffic_share(self, index: int, share: float | None) -> float:
        """Send ``share`` (0 to 1) of all requests to replica ``index`` and spread the rest
        evenly over the others; ``None`` makes every replica equal again. In-flight requests
        finish where they are. Returns the share the proxy's integer weights achieve."""
        ...
