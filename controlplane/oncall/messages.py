"""What a page says: one :class:`Message` per outbox row, the same for every channel, each
notifier rendering it in its own format.

The evidence a person needs at 3 a.m. is in the message itself: the summary, the engine, the
SLO and the observed value (from the alert's annotations ``slo`` / ``observed``, or its
``value`` / ``threshold`` annotations), a link to the incident in the UI, and one-click
acknowledge / resolve links for the person it is sent to.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta

from controlplane.domain.incidents import NotifyAction
from controlplane.oncall.tokens import issue_action_token
from controlplane.settings import OncallSettings
from controlplane.store.notifications import OutboxItem
from controlplane.store.secrets import SecretBox

SEVERITIES = ("critical", "error", "warning", "info")


@dataclass(frozen=True, slots=True)
class Message:
    """One message to one contact method. ``key`` is the idempotency key of this message;
    ``dedup_key`` identifies the incident at the channel (PagerDuty's ``dedup_key``)."""

    key: str
    action: NotifyAction
    title: str
    summary: str
    severity: str
    engine: str | None
    slo: str | None
    observed: str | None
    link: str | None
    ack_url: str | None
    resolve_url: str | None
    dedup_key: str | None
    incident_id: int | None
    recipient: str | None
    triggered_at: datetime | None
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def headline(self) -> str:
        verb = {
            NotifyAction.trigger: "TRIGGERED",
            NotifyAction.acknowledge: "ACKNOWLEDGED",
            NotifyAction.resolve: "RESOLVED",
            NotifyAction.test: "TEST",
        }[self.action]
        ref = f"#{self.incident_id} " if self.incident_id is not None else ""
        return f"[{verb}] {ref}{self.title}"[:250]

    def text(self) -> str:
        """The plain-text body (email, and the fallback text of chat messages)."""
        lines = [self.headline, ""]
        if self.summary:
            lines.append(self.summary)
        for label, value in (
            ("Engine", self.engine),
            ("SLO", self.slo),
            ("Observed", self.observed),
            ("Severity", self.severity),
            ("Since", self.triggered_at.isoformat() if self.triggered_at else None),
        ):
            if value:
                lines.append(f"{label}: {value}")
        if self.link:
            lines += ["", f"Incident: {self.link}"]
        if self.ack_url:
            lines.append(f"Acknowledge: {self.ack_url}")
        if self.resolve_url:
            lines.append(f"Resolve: {self.resolve_url}")
        lines += ["", f"Key: {self.key}"]
        return "\n".join(lines) + "\n"


def _observed(annotations: dict[str, str]) -> str | None:
    if annotations.get("observed"):
        return annotations["observed"]
    value, threshold = annotations.get("value"), annotations.get("threshold")
    if value and threshold:
        return f"{value} (threshold {threshold})"
    return value or None


def build_message(
    item: OutboxItem, *, settings: OncallSettings, box: SecretBox, now: datetime
) -> Message:
    base = settings.base_url.rstrip("/")
    link = f"{base}/ui/incidents/{item.incident_id}" if item.incident_id else None
    ack = resolve = None
    if (
        item.incident_id is not None
        and item.user_id is not None
        and item.action is NotifyAction.trigger
    ):
        expires = now + timedelta(seconds=settings.action_token_ttl_s)
        tokens = {
            action: issue_action_token(
                box,
                incident_id=item.incident_id,
                action=action,
                user_id=item.user_id,
                expires_at=expires,
            )
            for action in (NotifyAction.acknowledge, NotifyAction.resolve)
        }
        ack = f"{base}/api/v1/oncall/actions/{tokens[NotifyAction.acknowledge]}"
        resolve = f"{base}/api/v1/oncall/actions/{tokens[NotifyAction.resolve]}"
    severity = item.labels.get("severity", "error")
    return Message(
        key=item.key,
        action=item.action,
        title=item.title,
        summary=item.annotations.get("summary") or item.annotations.get("description") or "",
        severity=severity if severity in SEVERITIES else "error",
        engine=item.engine or item.labels.get("engine"),
        slo=item.annotations.get("slo"),
        observed=_observed(item.annotations),
        link=link,
        ack_url=ack,
        resolve_url=resolve,
        dedup_key=item.dedup_key,
        incident_id=item.incident_id,
        recipient=item.user,
        triggered_at=item.triggered_at,
        labels=item.labels,
    )
