"""Incidents and the notifications they cause: two lifecycles and the grouping key.

An incident is what a person is paged about: alerts that share a grouping key (default
``alertname`` + ``engine``) while it is open belong to one incident, so a storm of alerts
pages once. ``resolved`` is resumable: the same key firing again within the reopen window
moves the incident back to ``triggered`` and escalation starts over, keeping one history.

A notification is a row in an outbox, written in the same transaction as the escalation step
that decided it; a sender moves it ``pending -> sending -> sent | failed``, back to
``pending`` with a later ``retry_at`` when a try failed in a way worth retrying. A crash while
``sending`` is recovered by a sweep that moves stale ``sending`` rows back to ``pending``: the
channel may then see the message twice, which is why every message carries an idempotency
key (PagerDuty's ``dedup_key`` is the incident's key, so a retry never opens a second one).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import timedelta
from enum import StrEnum

from controlplane.domain.lifecycle import Lifecycle

DEFAULT_GROUP_BY: tuple[str, ...] = ("alertname", "engine")
# A group firing again this soon after its incident resolved reopens that incident (a flap is
# one story); later, it is a new incident.
REOPEN_WINDOW = timedelta(hours=1)


class IncidentState(StrEnum):
    triggered = "triggered"
    acknowledged = "acknowledged"
    snoozed = "snoozed"
    resolved = "resolved"


INCIDENT_LIFECYCLE: Lifecycle[IncidentState] = Lifecycle(
    "incident",
    IncidentState,
    {
        IncidentState.triggered: {
            IncidentState.acknowledged,
            IncidentState.snoozed,
            IncidentState.resolved,
        },
        # Un-acknowledging puts it back in the escalation's hands.
        IncidentState.acknowledged: {
            IncidentState.triggered,
            IncidentState.snoozed,
            IncidentState.resolved,
        },
        # The snooze ending (or a new alert) triggers it again.
        IncidentState.snoozed: {
            IncidentState.triggered,
            IncidentState.acknowledged,
            IncidentState.resolved,
        },
        # A re-fire reopens it.
        IncidentState.resolved: {IncidentState.triggered},
    },
    terminal=(IncidentState.resolved,),
)

OPEN_INCIDENT_STATES: tuple[str, ...] = tuple(
    s.value for s in IncidentState if s is not IncidentState.resolved
)


class NotificationState(StrEnum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"
    # Never tried: the incident was acknowledged or resolved before a delayed rule's time.
    cancelled = "cancelled"
    # Written as suppressed by a maintenance window or silence: recorded, never sent.
    suppressed = "suppressed"


NOTIFICATION_LIFECYCLE: Lifecycle[NotificationState] = Lifecycle(
    "notification",
    NotificationState,
    {
        NotificationState.pending: {NotificationState.sending, NotificationState.cancelled},
        NotificationState.sending: {
            NotificationState.sent,
            NotificationState.failed,
            NotificationState.pending,
        },
        NotificationState.sent: set(),
        NotificationState.failed: set(),
        NotificationState.cancelled: set(),
        NotificationState.suppressed: set(),
    },
)


class NotifyAction(StrEnum):
    """What a message says about its incident (PagerDuty's ``event_action`` names)."""

    trigger = "trigger"
    acknowledge = "acknowledge"
    resolve = "resolve"
    test = "test"


def group_labels(labels: Mapping[str, str], group_by: Sequence[str]) -> dict[str, str]:
    """The labels an incident is grouped by (a label the alert lacks groups as empty)."""
    return {name: str(labels.get(name, "")) for name in group_by}


def group_hash(labels: Mapping[str, str], group_by: Sequence[str], *, route: str) -> str:
    """A stable key for "the same problem": the route's name and the grouped labels, hashed
    so any number of labels of any length fits one indexed column."""
    canonical = json.dumps(
        {"route": route, "labels": group_labels(labels, group_by)},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def incident_key(incident_id: int) -> str:
    """The idempotency key of an incident at every channel (PagerDuty's ``dedup_key``)."""
    return f"cplane-incident-{incident_id}"


def incident_title(labels: Mapping[str, str], annotations: Mapping[str, str]) -> str:
    summary = annotations.get("summary") or annotations.get("description") or ""
    name = labels.get("alertname", "alert")
    engine = labels.get("engine")
    head = f"{name} on {engine}" if engine else name
    return f"{head}: {summary}"[:500] if summary else head[:500]


def retry_delay_s(
    attempt: int,
    *,
    base_s: float,
    cap_s: float,
    jitter: float,
    retry_after_s: float | None = None,
) -> float:
    """How long to wait before try ``attempt + 1`` after ``attempt`` tries failed.

    Exponential with "equal jitter": half of ``min(cap, base * 2**(attempt-1))`` fixed, the
    other half scaled by ``jitter`` (a uniform draw in [0, 1), passed in so tests choose it),
    which spreads a burst of retries without ever retrying at once. A receiver's
    ``Retry-After`` is a floor: we never come back sooner than it asked.
    """
    ceiling = min(cap_s, base_s * 2 ** max(0, attempt - 1))
    delay = ceiling / 2 + ceiling / 2 * min(max(jitter, 0.0), 1.0)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, cap_s * 4))
    return delay
