"""The notifier port: one method, one message, one destination.

Implementations are thread-safe (the sender calls ``send`` from a pool) and hold no state
about messages: retries, backoff and bookkeeping are the sender's. ``send`` returns when the
channel accepted the message and raises :class:`DeliveryError` otherwise, saying whether a
retry can help and, when the channel said so (HTTP 429 ``Retry-After``), how long to wait.
Every message carries an idempotency key; a notifier passes it to the channel wherever the
channel has a place for it (PagerDuty's ``dedup_key`` is the incident's key; webhooks get an
``Idempotency-Key`` header; mail a ``Message-ID``), so a retry after a crash is recognised.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from controlplane.domain.escalation import ChannelKind
from controlplane.oncall.messages import Message


class DeliveryError(Exception):
    """The channel did not take the message; ``str()`` is safe to store (no secrets)."""

    def __init__(
        self, message: str, *, retryable: bool, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class Destination:
    """Where to: the contact method's address and its decrypted secret fields."""

    address: str
    secret: dict[str, str]

    def __repr__(self) -> str:  # never the secret, whatever logs it
        return f"Destination(address={self.address!r})"


class Notifier(Protocol):
    kind: ChannelKind

    def send(self, message: Message, destination: Destination) -> None:
        """Deliver ``message``.

        Raises:
            DeliveryError: not delivered; ``retryable`` says whether trying again may help.
        """
        ...


def retry_after(value: str | None) -> float | None:
    """An HTTP ``Retry-After`` in seconds (the delta form; dates are rare for these APIs)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def http_outcome(status: int, body: str, retry_after_s: float | None) -> DeliveryError | None:
    """The common HTTP contract: 2xx delivered, 429 and 5xx worth retrying, other 4xx not."""
    if 200 <= status < 300:
        return None
    excerpt = body.strip().replace("\n", " ")[:200]
    if status == 429:
        return DeliveryError(
            f"HTTP 429 (rate limited) {excerpt}", retryable=True, retry_after_s=retry_after_s
        )
    return DeliveryError(f"HTTP {status} {excerpt}", retryable=status >= 500 or status == 408)
