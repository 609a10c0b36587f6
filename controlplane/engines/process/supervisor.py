"""The owner of a process-managed engine on one node: its replicas' processes and the proxy.

A configuration change is blue/green per replica: start a new process with the new flags on
a spare port, wait for its health endpoint and one real inference, add it to the proxy,
drain the old process (no new requests; wait until the requests it holds have finished),
then stop it. The proxy never points at a process that has not served an inference, and
never cuts a request in flight, so clients see no failed request. A process that exits or
never becomes ready is stopped and the old one keeps serving, untouched.

Replicas are switched one at a time; when one of them fails, the ones already switched are
switched back, so the engine never stays half-applied.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import httpx

from controlplane.domain import ConfigValue
from controlplane.domain import EngineConfig
from controlplane.domain import EngineRejectedError
from controlplane.domain import EngineUnreachableError
from controlplane.domain import redact_urls_in
from controlplane.engines.http import ModelName
from controlplane.engines.http import check_completion
from controlplane.engines.process.haproxy import FULL_WEIGHT
from controlplane.engines.process.haproxy import TRAFFIC_BACKEND
from controlplane.engines.process.haproxy import HAProxy
from controlplane.engines.process.haproxy import free_port
from controlplane.engines.process.presets import Preset
from controlplane.engines.process.presets import preset_for

log = logging.getLogger(__name__)

_LOG_TAIL_CHARS = 200


@dataclass(frozen=True)
class ProcessSpec:
    """What an operator registers: the engine's base command and how many replicas."""

    name: str
    preset: str
    command: tuple[str, ...]
    replicas: int = 1
    config: Mapping[str, ConfigValue] = field(default_factory=dict)
    """Initial values of knobs; absent knobs take the preset's defaults."""
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    startup_timeout_s: float | None = None
    drain_timeout_s: float = 60.0
    stop_timeout_s: float = 15.0
    listen_host: str = "127.0.0.1"
    """Where the proxy's frontends listen (traffic, per-replica metrics); the engine
    processes themselves always listen on loopback."""


@dataclass
class EngineProcess:
    port: int
    config: EngineConfig
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def server(self) -> str:
        return f"p{self.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no output"
        last = lines[-1].strip() if lines else "no output"
        clean = "".join(ch if ch.isprintable() else " " for ch in last)
        return redact_urls_in(clean[:_LOG_TAIL_CHARS])

    def stop(self, timeout_s: float) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Supervisor:
    """Owns one engine's processes and its HAProxy; safe to call from several threads (one
    change at a time)."""

    def __init__(self, spec: ProcessSpec, workdir: Path) -> None:
        if spec.replicas < 1:
            raise ValueError("replicas must be >= 1")
        self.spec = spec
        self.preset: Preset = preset_for(spec.preset)
        self.preset.check_command(spec.command)
        self._initial = self.preset.search_space().validate(
            {**self.preset.defaults(), **spec.config}
        )
        self.workdir = workdir
        # Engine logs may carry model paths and arguments: readable by this user only.
        workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        workdir.chmod(0o700)
        self.control_port = free_port()
        self.proxy = HAProxy(
            workdir / "proxy",
            replicas=spec.replicas,
            listen_host=spec.listen_host,
            control_port=self.control_port,
        )
        self._replicas: list[EngineProcess | None] = [None] * spec.replicas
        self._weights = [FULL_WEIGHT] * spec.replicas
        self._lock = threading.RLock()
        self._stopping: list[threading.Thread] = []
        self._client = httpx.Client(timeout=httpx.Timeout(5.0, connect=1.0))

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> None:
        self.proxy.start()
        try:
            for index in range(self.spec.replicas):
                self._switch(index, dict(self._initial))
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        with self._lock:
            for stopper in self._stopping:
                stopper.join()
            for proc in self._replicas:
                if proc is not None:
                    proc.stop(self.spec.stop_timeout_s)
            self._replicas = [None] * self.spec.replicas
            self.proxy.stop()
            self._client.close()

    # -- reading ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.proxy.url

    @property
    def replica_count(self) -> int:
        return self.spec.replicas

    def weights(self) -> list[int]:
        return list(self._weights)

    def replica_url(self, index: int) -> str:
        return self.proxy.replica_url(index)

    def config(self, index: int = 0) -> EngineConfig:
        proc = self._replicas[index]
        if proc is None:
            raise EngineUnreachableError(f"engine {self.spec.name!r}: replica {index} is down")
        return dict(proc.config)

    def weight(self, index: int) -> int:
        return self._weights[index]

    # -- changing ---------------------------------------------------------------------

    def apply(self, changes: Mapping[str, ConfigValue]) -> EngineConfig:
        """Every replica to ``config(0)`` updated with ``changes``; all or nothing."""
        with self._lock:
            target = {**self.config(0), **self.preset.search_space().validate(changes)}
            done: list[tuple[int, EngineConfig]] = []
            try:
                for index in range(self.spec.replicas):
                    before = self.config(index)
                    if before != target:
                        self._switch(index, target)
                        done.append((index, before))
            except (EngineRejectedError, EngineUnreachableError):
                for index, before in reversed(done):
                    self._switch(index, before)
                raise
            return self.config(0)

    def switch_replica(self, index: int, changes: Mapping[str, ConfigValue]) -> EngineConfig:
        """One replica to its config updated with ``changes`` (a canary's first step)."""
        with self._lock:
            target = {**self.config(index), **self.preset.search_space().validate(changes)}
            if target != self.config(index):
                self._switch(index, target)
            return self.config(index)

    def set_weight(self, index: int, weight: int) -> None:
        if not 0 <= weight <= FULL_WEIGHT:
            raise ValueError(f"weight must be between 0 and {FULL_WEIGHT}, got {weight}")
        with self._lock:
            proc = self._replicas[index]
            if proc is None:
                raise EngineUnreachableError(f"replica {index} is down")
            self.proxy.api.set_weight(TRAFFIC_BACKEND, proc.server, weight)
            self._weights[index] = weight

    def set_share(self, index: int, share: float | None) -> float:
        """Weights giving replica ``index`` ``share`` of the traffic; returns the share the
        integer weights achieve."""
        with self._lock:
            weights = share_weights(self.spec.replicas, index, share)
            for i, weight in enumerate(weights):
                if weight != self._weights[i]:
                    self.set_weight(i, weight)
            total = sum(weights)
            return weights[index] / total if total else 0.0

    def _switch(self, index: int, config: EngineConfig) -> None:
        old = self._replicas[index]
        new = self._start_process(config)
        try:
            self._wait_ready(new)
            self.proxy.api.add_server(
                TRAFFIC_BACKEND, new.server, new.port, weight=self._weights[index]
            )
        except BaseException:
            new.stop(self.spec.stop_timeout_s)
            raise
        self.proxy.route_replica(index, new.port)
        self._replicas[index] = new
        if old is not None:
            self._retire(old)
        log.info(
            "engine %s replica %d now serves %s on port %d",
            self.spec.name,
            index,
            _describe(config),
            new.port,
        )

    def _start_process(self, config: EngineConfig) -> EngineProcess:
        port = free_port()
        argv = self.preset.argv(self.spec.command, config, port=port)
        log_path = self.workdir / f"engine-{port}.log"
        env = {**os.environ, **self.spec.env}
        with log_path.open("wb") as out:
            try:
                process = subprocess.Popen(
                    argv,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    start_new_session=True,
                )
            except OSError as exc:
                raise EngineRejectedError(
                    f"engine {self.spec.name!r}: cannot start {argv[0]!r}: {exc.strerror}",
                    field="command",
                ) from exc
        return EngineProcess(port=port, config=dict(config), process=process, log_path=log_path)

    def _wait_ready(self, proc: EngineProcess) -> None:
        timeout = self.spec.startup_timeout_s or self.preset.startup_timeout_s
        deadline = time.monotonic() + timeout
        client = httpx.Client(base_url=proc.url, timeout=httpx.Timeout(5.0, connect=1.0))
        model = ModelName()
        last = "its health check never answered 200"
        try:
            while time.monotonic() < deadline:
                code = proc.process.poll()
                if code is not None:
                    raise EngineRejectedError(
                        f"engine {self.spec.name!r}: the new process exited with status {code} "
                        f"before serving: {proc.log_tail()}",
                        field="command",
                    )
                try:
                    healthy = client.get(self.preset.health_path).status_code == 200
                except httpx.HTTPError:
                    healthy = False
                if healthy:
                    check = check_completion(client, timeout_s=30.0, model=model)
                    if check.ok:
                        return
                    last = check.detail
                time.sleep(0.1)
            raise EngineRejectedError(
                f"engine {self.spec.name!r}: the new process was not ready within "
                f"{timeout:g} s ({last}); the old one keeps serving",
                field="command",
            )
        finally:
            client.close()

    def _retire(self, old: EngineProcess) -> None:
        api = self.proxy.api
        api.drain(TRAFFIC_BACKEND, old.server)
        deadline = time.monotonic() + self.spec.drain_timeout_s
        while api.connections(TRAFFIC_BACKEND, old.server) > 0:
            if time.monotonic() > deadline:
                log.warning(
                    "engine %s: port %d still held requests after %g s of draining; stopping it",
                    self.spec.name,
                    old.port,
                    self.spec.drain_timeout_s,
                )
                break
            time.sleep(0.02)
        api.remove_server(TRAFFIC_BACKEND, old.server)
        # Out of the proxy and idle: its shutdown (seconds for a large engine) need not hold
        # up the change, which already serves. stop() waits for these.
        stopper = threading.Thread(
            target=old.stop, args=(self.spec.stop_timeout_s,), name=f"stop-{old.port}"
        )
        stopper.start()
        self._stopping = [t for t in self._stopping if t.is_alive()] + [stopper]


def share_weights(replicas: int, index: int, share: float | None) -> list[int]:
    """HAProxy weights (0..256) that send ``share`` of requests to ``index``, the rest evenly
    to the others, at the finest resolution the weights allow."""
    if share is None or replicas == 1:
        return [FULL_WEIGHT] * replicas
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must be between 0 and 1, got {share}")
    if share >= 1.0:
        return [FULL_WEIGHT if i == index else 0 for i in range(replicas)]
    ratio = share / (1 - share) * (replicas - 1)  # this replica's weight over one other's
    if ratio <= 1.0:
        rest = FULL_WEIGHT
        mine = max(1 if share > 0 else 0, round(ratio * FULL_WEIGHT))
    else:
        mine, rest = FULL_WEIGHT, max(1, round(FULL_WEIGHT / ratio))
    return [mine if i == index else rest for i in range(replicas)]


def _describe(config: Mapping[str, ConfigValue]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(config.items()))
