"""Slack incoming webhooks through slack-sdk's ``WebhookClient``.

Slack answers 200 ``ok``; 400 ``invalid_payload``, 403 ``action_prohibited``, 404
``no_service`` (the webhook was removed) are final; 429 carries ``Retry-After``; 5xx is worth
retrying. Incoming webhooks have no idempotency field, so the key goes into the message's
context block: a duplicate after a crash is visible as the same key.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.webhook import WebhookClient

from controlplane.domain.escalation import ChannelKind
from controlplane.oncall.messages import Message
from controlplane.oncall.notifiers.base import DeliveryError
from controlplane.oncall.notifiers.base import Destination
from controlplane.oncall.notifiers.base import http_outcome
from controlplane.oncall.notifiers.base import retry_after


def blocks(message: Message) -> list[dict[str, Any]]:
    fields = [
        f"*{label}:* {value}"
        for label, value in (
            ("Engine", message.engine),
            ("SLO", message.slo),
            ("Observed", message.observed),
            ("Severity", message.severity),
        )
        if value
    ]
    out: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{message.headline}*"}},
    ]
    if message.summary or fields:
        out.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "\n".join([message.summary, *fields]).strip()},
            }
        )
    links = [
        f"<{url}|{text}>"
        for text, url in (
            ("Open incident", message.link),
            ("Acknowledge", message.ack_url),
            ("Resolve", message.resolve_url),
        )
        if url
    ]
    if links:
        out.append({"type": "section", "text": {"type": "mrkdwn", "text": " · ".join(links)}})
    out.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"key {message.key}"}]})
    return out


class SlackNotifier:
    kind = ChannelKind.slack

    def __init__(self, *, timeout_s: float) -> None:
        self._timeout = int(max(1, timeout_s))

    def send(self, message: Message, destination: Destination) -> None:
        url = destination.secret.get("url", "")
        if not url:
            raise DeliveryError("contact method has no webhook URL", retryable=False)
        client = WebhookClient(url, timeout=self._timeout)
        try:
            response = client.send(text=message.headline, blocks=blocks(message))
        except OSError as exc:
            raise DeliveryError(
                f"Slack webhook unreachable: {type(exc).__name__}", retryable=True
            ) from exc
        headers = {k.lower(): v for k, v in (response.headers or {}).items()}
        value = headers.get("retry-after")
        problem = http_outcome(
            response.status_code,
            response.body or "",
            retry_after(value[0] if isinstance(value, list) else value),
        )
        if problem is not None:
            raise problem
