"""The engine: one model, one waiting queue, and the executor pool of the live config.

Switch protocol: build the new pool beside the old one (model copy at the new precision,
KV caches, one warm-up step per executor); if that fails the old pool keeps serving and
the error is raised. Otherwise, under a lock, point the engine at the new pool, start it,
and tell the old pool to drain: it takes no more requests from the shared queue and
finishes its running sequences in the background. A queued request is simply taken by
whichever pool is live, so a switch never fails a request.
"""

from __future__ import annotations

import logging
import threading

import torch

from engine.batcher import GenerationRequest
from engine.batcher import RequestQueue
from engine.config import EngineConfig
from engine.config import SearchSpace
from engine.config import available_cores
from engine.executors import ExecutorPool
from engine.faults import WeightNoise
from engine.metrics import EngineMetrics
from engine.model import CausalLM
from engine.model import ModelSpec
from engine.model import build_model
from engine.model import perturbed
from engine.precision import Precision
from engine.precision import prepare_model

log = logging.getLogger(__name__)


class ConfigBuildError(RuntimeError):
    """Building the executors of a new config failed; the old config still serves."""


class Engine:
    def __init__(
        self,
        spec: ModelSpec,
        config: EngineConfig,
        *,
        seed: int = 0,
        max_queue: int = 256,
        served_model_name: str | None = None,
        device: torch.device | None = None,
        metrics: EngineMetrics | None = None,
    ) -> None:
        self.spec = spec
        self.seed = seed
        self.device = device or torch.device("cpu")
        self.served_model_name = served_model_name or spec.name
        self.search_space = SearchSpace.for_device(self.device)
        self.search_space.validate(config)
        self.metrics = metrics or EngineMetrics(self.served_model_name)
        self.queue = RequestQueue(max_queue)
        self.cores = available_cores()
        self._base = build_model(spec, seed)
        self._models: dict[Precision, CausalLM] = {}
        self._noise = WeightNoise()
        self._noisy_base: CausalLM | None = None
        self._switch_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._draining: list[ExecutorPool] = []
        self._pool: ExecutorPool | None = None
        self._config = config
        self.metrics.bind_gauges(self.running_count, lambda: len(self.queue))

    @property
    def config(self) -> EngineConfig:
        return self._config

    def running_count(self) -> int:
        with self._state_lock:
            pools = [p for p in (self._pool, *self._draining) if p is not None]
        return sum(p.running_count() for p in pools)

    def model_for(self, precision: Precision) -> CausalLM:
        if precision not in self._models:
            base = self._base
            if self._noise.applies_to(precision):
                noise = self._noise
                if self._noisy_base is None:
                    self._noisy_base = perturbed(self._base, noise.relative, noise.seed)
                base = self._noisy_base
            self._models[precision] = prepare_model(base, precision, self.device)
        return self._models[precision]

    def set_weight_noise(self, noise: WeightNoise) -> None:
        """The weight-noise fault: rebuilds the models it changes and, when the live
        precision is among them, switches the live config onto the new weights (the usual
        switch: built beside, no request fails). Clearing it restores the seeded weights."""
        with self._switch_lock:
            live = self._config.precision
            changed = self._noise.applies_to(live) or noise.applies_to(live)
            self._noise = noise
            self._noisy_base = None
            self._models = {}
        if changed and self._pool is not None:
            self.switch(self._config)

    def start(self) -> None:
        pool = self._build(self._config)
        with self._state_lock:
            self._pool = pool
        pool.start()
        self.metrics.set_config(self.spec.name, self._config)
        log.info("engine serving %s with %s", self.spec.name, self._config)

    def submit(self, request: GenerationRequest) -> None:
        """Queues a request; raises ``QueueFullError`` when the queue is at capacity."""
        self.queue.put(request)

    def _build(self, config: EngineConfig) -> ExecutorPool:
        try:
            pool = ExecutorPool(
                self.model_for(config.precision), config, self.queue, self.metrics, self.cores
            )
            pool.warm_up()
        except Exception as exc:
            raise ConfigBuildError(f"could not build executors for {config}: {exc}") from exc
        return pool

    def switch(self, config: EngineConfig) -> EngineConfig:
        """Returns once ``config`` serves; raises ``ConfigError``/``ConfigBuildError`` and
        leaves the old config serving otherwise."""
        self.search_space.validate(config)
        with self._switch_lock:
            try:
                pool = self._build(config)
            except ConfigBuildError:
                self.metrics.switched(ok=False)
                raise
            with self._state_lock:
                old = self._pool
                self._pool = pool
                self._config = config
                if old is not None:
                    self._draining.append(old)
            pool.start()
            if old is not None:
                old.drain()
                threading.Thread(target=self._reap, args=(old,), name="drain", daemon=True).start()
            self.metrics.set_config(self.spec.name, config)
            self.metrics.switched(ok=True)
            log.info("engine switched to %s", config)
            return config

    def _reap(self, pool: ExecutorPool) -> None:
        pool.join()
        with self._state_lock:
            self._draining.remove(pool)

    def wait_drained(self, timeout: float) -> bool:
        """True once every old pool has finished its running sequences."""
        with self._state_lock:
            pools = list(self._draining)
        return all(p.join(timeout) for p in pools)

    def shutdown(self, timeout: float = 10.0) -> None:
        with self._state_lock:
            pools = [p for p in (self._pool, *self._draining) if p is not None]
            self._pool = None
        for request in self.queue.drain_all():
            request.finished_reason = "abort"
            self.metrics.finished("abort")
            request.sink("error", "the engine is shutting down")
        for pool in pools:
            pool.drain()
        for pool in pools:
            pool.join(timeout)
