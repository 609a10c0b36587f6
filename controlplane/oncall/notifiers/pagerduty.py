"""PagerDuty Events API v2 (``POST /v2/enqueue``) over httpx.

``dedup_key`` is the incident's key, for trigger, acknowledge and resolve alike: a trigger
sent twice (a retry after a crash) updates PagerDuty's one alert instead of opening a second,
and the acknowledge and resolve of an incident reach the alert its trigger opened. 202 is
accepted; 400 is a bad event (not retried); 429 and 5xx are retried, 429 after its
``Retry-After`` if it sent one.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from typing import Any

import httpx

from controlplane.domain.escalation import ChannelKind
from controlplane.domain.incidents import NotifyAction
from controlplane.oncall.messages import Message
from controlplane.oncall.notifiers.base import DeliveryError
from controlplane.oncall.notifiers.base import Destination
from controlplane.oncall.notifiers.base import http_outcome
from controlplane.oncall.notifiers.base import retry_after


def event(message: Message, routing_key: str) -> dict[str, Any]:
    action = (
        "trigger"
        if message.action in (NotifyAction.trigger, NotifyAction.test)
        else (message.action.value)
    )
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": (message.dedup_key or message.key)[:255],
    }
    if action != "trigger":
        return body
    body["payload"] = {
        "summary": message.headline[:1024],
        "source": message.engine or "cplane",
        "severity": message.severity,
        "timestamp": (message.triggered_at or datetime.now(UTC)).isoformat(),
        "component": message.engine,
        "custom_details": {
            "summary": message.summary,
            "slo": message.slo,
            "observed": message.observed,
            "labels": message.labels,
        },
    }
    body["client"] = "cplane"
    if message.link:
        body["client_url"] = message.link
        body["links"] = [{"href": message.link, "text": "Incident"}]
    return body


class PagerDutyNotifier:
    kind = ChannelKind.pagerduty

    def __init__(self, *, url: str, timeout_s: float) -> None:
        self._url = url
        self._client = httpx.Client(timeout=timeout_s)

    def send(self, message: Message, destination: Destination) -> None:
        key = destination.secret.get("routing_key", "")
        if not key:
            raise DeliveryError("contact method has no integration key", retryable=False)
        try:
            response = self._client.post(self._url, json=event(message, key))
        except httpx.HTTPError as exc:
            raise DeliveryError(
                f"PagerDuty unreachable: {type(exc).__name__}", retryable=True
            ) from exc
        problem = http_outcome(
            response.status_code, response.text, retry_after(response.headers.get("retry-after"))
        )
        if problem is not None:
            raise problem

    def close(self) -> None:
        self._client.close()
