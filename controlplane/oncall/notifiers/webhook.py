"""A generic webhook: the message as JSON, signed so the receiver can tell it came from us.

Headers: ``X-Cplane-Timestamp`` (Unix seconds), ``X-Cplane-Signature: sha256=<hex>`` (HMAC-
SHA256 with the contact method's secret over ``<timestamp>.<body>``, so a captured request
cannot be replayed with a new timestamp), and ``Idempotency-Key``. 2xx is delivered; 429 and
5xx are retried; other 4xx are not.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import asdict
from typing import Any

import httpx

from controlplane.domain.escalation import ChannelKind
from controlplane.oncall.messages import Message
from controlplane.oncall.notifiers.base import DeliveryError
from controlplane.oncall.notifiers.base import Destination
from controlplane.oncall.notifiers.base import http_outcome
from controlplane.oncall.notifiers.base import retry_after


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def payload(message: Message) -> dict[str, Any]:
    body = asdict(message)
    body["action"] = message.action.value
    body["headline"] = message.headline
    body["triggered_at"] = message.triggered_at.isoformat() if message.triggered_at else None
    return body


class WebhookNotifier:
    kind = ChannelKind.webhook

    def __init__(self, *, timeout_s: float) -> None:
        self._client = httpx.Client(timeout=timeout_s)

    def send(self, message: Message, destination: Destination) -> None:
        url, secret = destination.secret.get("url", ""), destination.secret.get("secret", "")
        if not url or not secret:
            raise DeliveryError("contact method has no URL or secret", retryable=False)
        body = json.dumps(payload(message), separators=(",", ":"), sort_keys=True).encode()
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Cplane-Timestamp": stamp,
            "X-Cplane-Signature": signature(secret, stamp, body),
            "Idempotency-Key": message.key,
        }
        try:
            response = self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(
                f"webhook unreachable: {type(exc).__name__}", retryable=True
            ) from exc
        problem = http_outcome(
            response.status_code, response.text, retry_after(response.headers.get("retry-after"))
        )
        if problem is not None:
            raise problem

    def close(self) -> None:
        self._client.close()
