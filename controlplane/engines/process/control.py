"""The supervisor's control API, and the client the process adapter uses when the
supervisor runs on another node (``cplane engine supervise``).

The supervisor owns the processes; the control plane only asks it for changes, over HTTP,
through the engine's own proxy (HAProxy sends ``/admin/`` to this server), so the control
plane needs neither SSH nor a shell on the node. Every call needs the engine's admin token
(``Authorization: Bearer``, compared in constant time); bodies are capped at 64 KiB.

``GET /admin/state`` (preset, configs, weights, per-replica metrics URLs),
``PUT /admin/config`` ``{"changes": {...}}`` (every replica),
``PUT /admin/replicas/<i>/config`` ``{"changes": {...}}``,
``PUT /admin/replicas/<i>/share`` ``{"share": 0.01 | null}``. Refusals answer 422 with
``{"error": {"message", "param"}}``; an engine that cannot be reached, 503.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from typing import Any

import httpx

from controlplane.domain import ConfigValue
from controlplane.domain import EngineConfig
from controlplane.domain import EngineTarget
from controlplane.domain import EngineUnreachableError
from controlplane.domain import ValidationError
from controlplane.engines.http import make_client
from controlplane.engines.http import request_json
from controlplane.engines.process.presets import Preset
from controlplane.engines.process.presets import preset_for
from controlplane.engines.process.supervisor import Supervisor

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
# A switch starts a process and waits for its first inference: as long as a start-up.
CONTROL_TIMEOUT = httpx.Timeout(900.0, connect=3.0)
_REPLICA = re.compile(r"^/admin/replicas/(\d{1,3})/(config|share)$")


class ControlServer:
    """Serves one supervisor's control API on loopback (the proxy is its only door)."""

    def __init__(self, supervisor: Supervisor, *, token: str) -> None:
        if len(token) < 16:
            raise ValidationError("the admin token must be at least 16 characters", field="token")
        handler = _handler(supervisor, token)
        self._server = ThreadingHTTPServer(("127.0.0.1", supervisor.control_port), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="process-control", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(supervisor: Supervisor, token: str) -> type[BaseHTTPRequestHandler]:
    expected = f"Bearer {token}".encode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # counters and the supervisor's own lines say what changed

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if not self._authorized():
                return
            if self.path != "/admin/state":
                self._send(404, {"error": {"message": "no such endpoint"}})
                return
            self._send(200, _state(supervisor))

        def do_PUT(self) -> None:  # noqa: N802
            if not self._authorized():
                return
            body = self._body()
            if body is None:
                return
            try:
                if self.path == "/admin/config":
                    config = supervisor.apply(_changes(body))
                    self._send(200, {"config": config})
                    return
                match = _REPLICA.match(self.path)
                if match is None:
                    self._send(404, {"error": {"message": "no such endpoint"}})
                    return
                index = int(match[1])
                if not 0 <= index < supervisor.replica_count:
                    raise ValidationError(f"no replica {index}", field="replica")
                if match[2] == "config":
                    config = supervisor.switch_replica(index, _changes(body))
                    self._send(200, {"config": config})
                else:
                    achieved = supervisor.set_share(index, _share(body))
                    self._send(200, {"achieved_share": achieved})
            except ValidationError as exc:
                self._send(422, {"error": {"message": str(exc), "param": exc.field}})
            except EngineUnreachableError as exc:
                self._send(503, {"error": {"message": str(exc)}})

        def _authorized(self) -> bool:
            given = (self.headers.get("Authorization") or "").encode()
            if hmac.compare_digest(given, expected):
                return True
            self._send(401, {"error": {"message": "missing or wrong admin token"}})
            return False

        def _body(self) -> dict[str, Any] | None:
            try:
                length = int(self.headers.get("Content-Length") or "0")
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY_BYTES:
                self._send(413, {"error": {"message": f"body over {MAX_BODY_BYTES} bytes"}})
                return None
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                body = None
            if not isinstance(body, dict):
                self._send(422, {"error": {"message": "the body is not a JSON object"}})
                return None
            return body

        def _send(self, status: int, body: Mapping[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _state(supervisor: Supervisor) -> dict[str, Any]:
    n = supervisor.replica_count
    return {
        "preset": supervisor.preset.name,
        "replicas": n,
        "configs": [supervisor.config(i) for i in range(n)],
        "weights": supervisor.weights(),
        "replica_urls": [supervisor.replica_url(i) for i in range(n)],
    }


def _changes(body: Mapping[str, Any]) -> dict[str, ConfigValue]:
    changes = body.get("changes")
    if not isinstance(changes, dict) or not all(
        isinstance(v, int | float | str | bool) for v in changes.values()
    ):
        raise ValidationError("changes must be an object of knob values", field="changes")
    return {str(k): v for k, v in changes.items()}


def _share(body: Mapping[str, Any]) -> float | None:
    share = body.get("share")
    if share is None:
        return None
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
        raise ValidationError("share must be a number from 0 to 1, or null", field="share")
    return float(share)


class RemoteSupervisor:
    """The control API's client, with the surface of :class:`Supervisor` the process
    adapter uses. The preset is the one the supervisor reports."""

    def __init__(self, target: EngineTarget) -> None:
        if not target.admin_token:
            raise ValidationError(
                f"engine {target.name!r}: a process engine supervised elsewhere needs its "
                "admin token",
                field="admin_token",
            )
        self.target = target
        self._client = make_client(target)
        state = self._state()
        self.preset: Preset = preset_for(str(state["preset"]))
        self.replica_count = int(state["replicas"])
        self._replica_urls = [str(u) for u in state["replica_urls"]]

    @property
    def url(self) -> str:
        return self.target.url.rstrip("/")

    def replica_url(self, index: int) -> str:
        return self._replica_urls[index]

    def config(self, index: int = 0) -> EngineConfig:
        configs = self._state()["configs"]
        return dict(configs[index])

    def apply(self, changes: Mapping[str, ConfigValue]) -> EngineConfig:
        body = self._call("PUT", "/admin/config", {"changes": dict(changes)})
        return dict(body["config"])

    def switch_replica(self, index: int, changes: Mapping[str, ConfigValue]) -> EngineConfig:
        body = self._call("PUT", f"/admin/replicas/{index}/config", {"changes": dict(changes)})
        return dict(body["config"])

    def set_share(self, index: int, share: float | None) -> float:
        body = self._call("PUT", f"/admin/replicas/{index}/share", {"share": share})
        return float(body["achieved_share"])

    def close(self) -> None:
        self._client.close()

    def _state(self) -> dict[str, Any]:
        body = self._call("GET", "/admin/state", None)
        if not isinstance(body, dict) or "preset" not in body:
            raise EngineUnreachableError(f"engine {self.target.name!r}: no supervisor state")
        return body

    def _call(self, method: str, path: str, json_body: Any) -> Any:
        return request_json(
            self._client,
            method,
            path,
            engine=self.target.name,
            json=json_body,
            timeout=CONTROL_TIMEOUT,
        )
