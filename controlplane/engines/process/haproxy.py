"""A real HAProxy in front of process-managed engines, driven through its runtime API.

HAProxy rather than nginx: its runtime API (a unix socket, ``level admin``) adds and removes
servers, changes their weights and drains them in the running process, with no reload and no
worker hand-over, so a switch never races a configuration reload and the drain is observable
(``show servers conn`` counts the connections still open on the old server). nginx changes
upstreams only by reloading, which starts new workers and leaves old ones finishing
requests on their own schedule.

Layout: one frontend for traffic (backend ``engine``, round-robin by weight over every
replica's live process) and one frontend per replica (backend ``r<i>``, one server) so the
guard can scrape each replica's own ``/metrics`` on a stable port while its process changes.
The socket lives in a private directory (mode 0700); nothing else is exposed.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from controlplane.domain import EngineUnreachableError

log = logging.getLogger(__name__)

HAPROXY_BIN = "haproxy"
TRAFFIC_BACKEND = "engine"
# HAProxy weights run from 0 to 256; replicas at full weight leave room for a canary at 1 %.
FULL_WEIGHT = 256


class RuntimeApiError(EngineUnreachableError):
    """HAProxy refused a runtime API command; the message is HAProxy's own answer."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port free now (bound, then released); the caller binds it soon after."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class ServerState:
    backend: str
    name: str
    addr: str
    port: int
    weight: int
    admin_maint: bool
    drain: bool


class RuntimeApi:
    """One command per connection (HAProxy's non-interactive mode), answer read to EOF."""

    def __init__(self, socket_path: Path, *, timeout_s: float = 5.0) -> None:
        self.socket_path = socket_path
        self.timeout_s = timeout_s

    def command(self, line: str) -> str:
        if "\n" in line or ";" in line:
            raise ValueError("one runtime API command at a time, without separators")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(self.timeout_s)
            try:
                s.connect(str(self.socket_path))
                s.sendall(line.encode() + b"\n")
                chunks = []
                while chunk := s.recv(65536):
                    chunks.append(chunk)
            except OSError as exc:
                raise EngineUnreachableError(f"haproxy runtime API: {exc}") from exc
        return b"".join(chunks).decode(errors="replace")

    def expect_ok(self, line: str, *, ok: tuple[str, ...] = ("",)) -> None:
        """Send a command whose success HAProxy answers with one of ``ok`` (often nothing)."""
        answer = self.command(line).strip()
        if not any(answer == o or (o and answer.startswith(o)) for o in ok):
            raise RuntimeApiError(f"haproxy refused {line.split(' ', 3)[:3]}: {answer[:200]}")

    def add_server(self, backend: str, name: str, port: int, *, weight: int) -> None:
        # Dynamic servers start in maintenance: enable only once the weight is set.
        self.expect_ok(
            f"add server {backend}/{name} 127.0.0.1:{port} weight {weight}",
            ok=("New server registered",),
        )
        self.expect_ok(f"enable server {backend}/{name}")

    def set_weight(self, backend: str, name: str, weight: int) -> None:
        self.expect_ok(f"set weight {backend}/{name} {weight}")

    def set_addr(self, backend: str, name: str, port: int) -> None:
        self.expect_ok(
            f"set server {backend}/{name} addr 127.0.0.1 port {port}",
            ok=("IP changed", "no need to change", "port changed", ""),
        )

    def drain(self, backend: str, name: str) -> None:
        self.expect_ok(f"set server {backend}/{name} state drain")

    def remove_server(self, backend: str, name: str) -> None:
        self.expect_ok(f"disable server {backend}/{name}")
        # HAProxy refuses to delete a server while idle keep-alive connections to it
        # linger; disabling it purges them within moments.
        answer = ""
        for _ in range(100):
            answer = self.command(f"del server {backend}/{name}").strip()
            if answer.startswith("Server deleted"):
                return
            time.sleep(0.02)
        log.warning("haproxy kept server %s/%s disabled: %s", backend, name, answer[:120])

    def connections(self, backend: str, name: str) -> int:
        """Connections open on the server now, in use or idle (``show servers conn``)."""
        lines = self.command(f"show servers conn {backend}").splitlines()
        header = lines[0].lstrip("# ").split() if lines else []
        if "used_cur" not in header:
            raise RuntimeApiError("haproxy answered show servers conn without used_cur")
        column = header.index("used_cur")
        for line in lines[1:]:
            fields = line.split()
            if fields and fields[0] == f"{backend}/{name}" and len(fields) > column:
                return int(fields[column])
        raise RuntimeApiError(f"haproxy has no server {backend}/{name}")

    def servers(self, backend: str) -> list[ServerState]:
        """``show servers state``: weight and admin state of each server of ``backend``."""
        lines = self.command(f"show servers state {backend}").splitlines()
        header: list[str] = []
        states = []
        for line in lines:
            if line.startswith("# be_id"):
                header = line[2:].split()
                continue
            fields = line.split()
            if not header or len(fields) < len(header):
                continue
            row = dict(zip(header, fields[: len(header)], strict=True))
            admin = int(row["srv_admin_state"])
            states.append(
                ServerState(
                    backend=row["be_name"],
                    name=row["srv_name"],
                    addr=row["srv_addr"],
                    port=int(row["srv_port"]),
                    weight=int(row["srv_uweight"]),
                    admin_maint=bool(admin & 0x01 or admin & 0x02 or admin & 0x04),
                    drain=bool(admin & 0x08 or admin & 0x10),
                )
            )
        return states


def render_config(
    *,
    socket_path: Path,
    traffic_port: int,
    replica_ports: list[int],
    timeout_s: float,
    listen_host: str = "127.0.0.1",
    control_port: int | None = None,
) -> str:
    """The whole configuration; servers are added at run time, so it never changes."""
    lines = [
        "global",
        f"    stats socket {socket_path} mode 600 level admin",
        "    stats timeout 10s",
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        f"    timeout client {int(timeout_s)}s",
        f"    timeout server {int(timeout_s)}s",
        # Longer than any client's own keep-alive expiry: the client closes an idle
        # connection first, so a request never lands on one HAProxy is closing.
        "    timeout http-keep-alive 30s",
        # A connection refused before anything was sent is safe to retry elsewhere, even
        # for a POST; nothing else is retried (an inference is not idempotent).
        "    retries 3",
        "    retry-on conn-failure",
        "    option redispatch",
        "frontend traffic",
        f"    bind {listen_host}:{traffic_port}",
        f"    default_backend {TRAFFIC_BACKEND}",
        f"backend {TRAFFIC_BACKEND}",
        "    balance roundrobin",
    ]
    if control_port is not None:
        # The supervisor's control API (token-checked by the supervisor) shares the engine's
        # URL, so an engine registered by that URL is changed where it is served.
        lines.insert(
            lines.index(f"    default_backend {TRAFFIC_BACKEND}"),
            "    use_backend control if { path_beg /admin/ }",
        )
        # A change waits for a new engine process to start: minutes for a large model.
        lines += [
            "backend control",
            "    timeout server 900s",
            f"    server control 127.0.0.1:{control_port}",
        ]
    for index, port in enumerate(replica_ports):
        lines += [
            f"frontend replica{index}",
            f"    bind {listen_host}:{port}",
            f"    default_backend r{index}",
            f"backend r{index}",
            # Parked on the discard port until the replica's first process is up.
            "    server live 127.0.0.1:9 disabled",
        ]
    return "\n".join(lines) + "\n"


class HAProxy:
    """One HAProxy process (``-db``: foreground, so it dies with its supervisor)."""

    def __init__(
        self,
        workdir: Path,
        *,
        replicas: int,
        timeout_s: float = 120.0,
        binary: str = HAPROXY_BIN,
        listen_host: str = "127.0.0.1",
        control_port: int | None = None,
    ) -> None:
        self.workdir = workdir
        workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.socket_path = workdir / "admin.sock"
        self.config_path = workdir / "haproxy.cfg"
        self.traffic_port = free_port()
        self.replica_ports = [free_port() for _ in range(replicas)]
        self.config_path.write_text(
            render_config(
                socket_path=self.socket_path,
                traffic_port=self.traffic_port,
                replica_ports=self.replica_ports,
                timeout_s=timeout_s,
                listen_host=listen_host,
                control_port=control_port,
            )
        )
        self.listen_host = listen_host
        self.api = RuntimeApi(self.socket_path)
        self._binary = binary
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self._public_host}:{self.traffic_port}"

    def replica_url(self, index: int) -> str:
        return f"http://{self._public_host}:{self.replica_ports[index]}"

    @property
    def _public_host(self) -> str:
        return "127.0.0.1" if self.listen_host in ("0.0.0.0", "::") else self.listen_host

    def start(self, *, timeout_s: float = 10.0) -> None:
        check = subprocess.run(
            [self._binary, "-c", "-q", "-f", str(self.config_path)],
            capture_output=True,
            check=False,
        )
        if check.returncode != 0:
            raise EngineUnreachableError(
                f"haproxy refused its configuration: {check.stderr.decode()[-300:]}"
            )
        log_path = self.workdir / "haproxy.log"
        with log_path.open("wb") as out:
            self._process = subprocess.Popen(
                [self._binary, "-db", "-f", str(self.config_path)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-300:]
                raise EngineUnreachableError(f"haproxy exited at start: {tail}")
            if self.socket_path.exists():
                try:
                    self.api.command("show info")
                    log.info("haproxy serving on %s", self.url)
                    return
                except EngineUnreachableError:
                    pass
            time.sleep(0.05)
        self.stop()
        raise EngineUnreachableError("haproxy did not open its runtime API in time")

    def route_replica(self, index: int, port: int) -> None:
        """Point replica ``index``'s own frontend at the process on ``port``."""
        self.api.set_addr(f"r{index}", "live", port)
        self.api.expect_ok(f"enable server r{index}/live")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
