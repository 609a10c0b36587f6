"""Local receivers that implement the contracts of services that cannot run here: PagerDuty's
Events API v2 and Slack's incoming webhooks (and a generic signed-webhook receiver). For
tests, benchmarks and trying a configuration without paging anyone.

They mirror what the real services document: PagerDuty answers 202 with the ``dedup_key``
(made up when the event had none), 400 ``invalid event`` with the reasons for a bad one, 429
when rate limited; a trigger for a ``dedup_key`` with an open alert updates it, and one after
resolve opens a new alert. Slack answers 200 ``ok``, 400 ``invalid_payload`` (neither text nor
blocks), 404 ``no_service`` (an unknown webhook), 429 with ``Retry-After``. Faults can be
injected: a share of requests failing with 500, or the next N answered 429.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from dataclasses import field
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from typing import Any

PD_ACTIONS = ("trigger", "acknowledge", "resolve")
PD_SEVERITIES = ("critical", "error", "warning", "info")


@dataclass
class Faults:
    """``fail_rate``: share of requests answered 500; ``throttle``: the next N answered 429
    with ``Retry-After: retry_after``; ``delay_s``: every answer waits this long (a slow
    service, so a sender can be caught mid-request)."""

    fail_rate: float = 0.0
    delay_s: float = 0.0
    throttle: int = 0
    retry_after: int = 1
    seed: int = 0
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)


class _Receiver:
    def __init__(self, faults: Faults | None = None) -> None:
        self.faults = faults or Faults()
        self.lock = threading.Lock()
        self.requests = 0
        self.started = 0  # requests read, answered or not (``requests`` counts answered)
        self.statuses: Counter[int] = Counter()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.started += 1
                if receiver.faults.delay_s:
                    time.sleep(receiver.faults.delay_s)
                with receiver.lock:
                    receiver.requests += 1
                    status, headers, reply = receiver._fault() or receiver.handle(
                        self.path, dict(self.headers.items()), body
                    )
                    receiver.statuses[status] += 1
                data = reply.encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def _fault(self) -> tuple[int, dict[str, str], str] | None:
        f = self.faults
        if f.throttle > 0:
            f.throttle -= 1
            return 429, {"Retry-After": str(f.retry_after)}, self.throttled()
        if f.fail_rate and f.rng.random() < f.fail_rate:
            return 500, {}, "internal error"
        return None

    def throttled(self) -> str:
        return "rate limited"

    def handle(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], str]:
        raise NotImplementedError

    def start(self) -> _Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


class PagerDutyReceiver(_Receiver):
    """``POST /v2/enqueue``. ``alerts`` maps dedup_key -> status; ``opened`` counts alerts
    opened (a trigger for a key with no open alert), the "pages" PagerDuty would ring."""

    def __init__(self, faults: Faults | None = None) -> None:
        super().__init__(faults)
        self.events: list[dict[str, Any]] = []
        self.alerts: dict[str, str] = {}
        self.opened: Counter[str] = Counter()
        self.first_seen: dict[str, float] = {}  # dedup_key -> time.monotonic() of its trigger

    @property
    def url(self) -> str:
        return f"{self.base_url}/v2/enqueue"

    def throttled(self) -> str:
        return json.dumps(
            {"status": "throttled", "message": "Requests for this service are throttled"}
        )

    def handle(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], str]:
        json_type = {"Content-Type": "application/json"}
        if path != "/v2/enqueue":
            return 404, json_type, json.dumps({"status": "not found"})
        errors: list[str] = []
        try:
            event = json.loads(body)
            if not isinstance(event, dict):
                raise ValueError
        except ValueError:
            return (
                400,
                json_type,
                json.dumps(
                    {
                        "status": "invalid event",
                        "message": "Event object is invalid",
                        "errors": ["not JSON"],
                    }
                ),
            )
        key = event.get("routing_key")
        action = event.get("event_action")
        if not isinstance(key, str) or len(key) != 32:
            errors.append("'routing_key' must be a 32 character string")
        if action not in PD_ACTIONS:
            errors.append("'event_action' is invalid (must be trigger, acknowledge or resolve)")
        dedup = event.get("dedup_key")
        if dedup is not None and (not isinstance(dedup, str) or len(dedup) > 255):
            errors.append("'dedup_key' must be a string of at most 255 characters")
        if action == "trigger":
            payload = event.get("payload")
            if not isinstance(payload, dict):
                errors.append("'payload' is missing")
            else:
                for name in ("summary", "source", "severity"):
                    if not payload.get(name):
                        errors.append(f"'payload.{name}' is missing or blank")
                if payload.get("severity") not in PD_SEVERITIES:
                    errors.append("'payload.severity' is invalid")
                if len(str(payload.get("summary", ""))) > 1024:
                    errors.append("'payload.summary' is longer than 1024 characters")
        elif action in ("acknowledge", "resolve") and not dedup:
            errors.append("'dedup_key' is required for acknowledge and resolve")
        if errors:
            return (
                400,
                json_type,
                json.dumps(
                    {
                        "status": "invalid event",
                        "message": "Event object is invalid",
                        "errors": errors,
                    }
                ),
            )
        dedup = dedup or uuid.uuid4().hex
        self.events.append(event)
        status = self.alerts.get(dedup)
        if action == "trigger":
            self.first_seen.setdefault(dedup, time.monotonic())
            if status in (None, "resolved"):
                self.opened[dedup] += 1
                self.alerts[dedup] = "triggered"
        elif status not in (None, "resolved"):
            self.alerts[dedup] = "acknowledged" if action == "acknowledge" else "resolved"
        return (
            202,
            json_type,
            json.dumps({"status": "success", "message": "Event processed", "dedup_key": dedup}),
        )


class SlackReceiver(_Receiver):
    """Incoming webhooks at ``/services/<path>``; ``messages`` by webhook path."""

    def __init__(self, faults: Faults | None = None) -> None:
        super().__init__(faults)
        self.hooks: set[str] = set()
        self.messages: list[dict[str, Any]] = []

    def new_webhook(self) -> str:
        team, bot = uuid.uuid4().hex[:8].upper(), uuid.uuid4().hex[:8].upper()
        path = f"/services/T{team}/B{bot}/{uuid.uuid4().hex}"
        self.hooks.add(path)
        return self.base_url + path

    def handle(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], str]:
        plain = {"Content-Type": "text/html"}
        if path not in self.hooks:
            return 404, plain, "no_service"
        try:
            msg = json.loads(body)
        except ValueError:
            return 400, plain, "invalid_payload"
        if not isinstance(msg, dict) or not (msg.get("text") or msg.get("blocks")):
            return 400, plain, "no_text"
        self.messages.append({"path": path, **msg})
        return 200, plain, "ok"


class WebhookReceiver(_Receiver):
    """Checks the HMAC signature; ``deliveries`` counts requests per ``Idempotency-Key``."""

    def __init__(self, secret: str, faults: Faults | None = None) -> None:
        super().__init__(faults)
        self.secret = secret
        self.bodies: list[dict[str, Any]] = []
        self.deliveries: Counter[str] = Counter()

    def handle(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], str]:
        lower = {k.lower(): v for k, v in headers.items()}
        stamp = lower.get("x-cplane-timestamp", "")
        mac = hmac.new(self.secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
        if not hmac.compare_digest(
            "sha256=" + mac.hexdigest(), lower.get("x-cplane-signature", "")
        ):
            return 401, {}, "bad signature"
        self.deliveries[lower.get("idempotency-key", "")] += 1
        self.bodies.append(json.loads(body))
        return 204, {}, ""
