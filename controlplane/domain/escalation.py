"""Escalation policies and notification rules: whom to page, how, and when to go further.

A policy is ordered steps; each step pages its targets (the on-call of a schedule, or named
users) and waits ``delay_s`` before the next. After the last step the policy starts over,
``repeat`` times. An acknowledgement stops it; a re-fire after resolve starts it again from
the first step. Each person's notification rules say how they are reached: e.g. Slack at
once, email after five minutes (a later rule is cancelled if the incident is acknowledged
first). A person with no rules is reached on every contact method at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from enum import StrEnum

from controlplane.domain.errors import ValidationError

MAX_DELAY_S = 86_400
MAX_REPEAT = 20


class TargetKind(StrEnum):
    schedule = "schedule"
    user = "user"
    team = "team"


class ChannelKind(StrEnum):
    email = "email"
    slack = "slack"
    pagerduty = "pagerduty"
    webhook = "webhook"


@dataclass(frozen=True, slots=True)
class Target:
    kind: TargetKind
    id: int


@dataclass(frozen=True, slots=True)
class EscalationStep:
    targets: tuple[Target, ...]
    delay_s: int


@dataclass(frozen=True, slots=True)
class Position:
    """Where an incident's escalation stands: the next step to run and the pass over the
    policy it belongs to (0 = first pass)."""

    step: int
    loop: int


@dataclass(frozen=True)
class EscalationPolicy:
    name: str
    steps: tuple[EscalationStep, ...]
    repeat: int = 0

    def validate(self) -> None:
        if not self.steps:
            raise ValidationError("an escalation policy needs at least one step", field="steps")
        if not 0 <= self.repeat <= MAX_REPEAT:
            raise ValidationError(f"repeat must be 0 to {MAX_REPEAT}", field="repeat")
        for i, step in enumerate(self.steps):
            if not step.targets:
                raise ValidationError(f"steps[{i}]: a step needs targets", field=f"steps[{i}]")
            if not 0 <= step.delay_s <= MAX_DELAY_S:
                raise ValidationError(
                    f"steps[{i}]: delay_s must be 0 to {MAX_DELAY_S}", field=f"steps[{i}]"
                )

    def after(self, position: Position) -> Position | None:
        """The position after running ``position``'s step; None when the policy is done."""
        if position.step + 1 < len(self.steps):
            return Position(position.step + 1, position.loop)
        if position.loop < self.repeat:
            return Position(0, position.loop + 1)
        return None


@dataclass(frozen=True, slots=True)
class NotificationRule:
    contact_method_id: int
    delay_s: int


@dataclass(frozen=True, slots=True)
class PlannedNotification:
    user_id: int
    contact_method_id: int
    not_before: datetime


def plan_notifications(
    user_ids: Sequence[int],
    rules: Mapping[int, Sequence[NotificationRule]],
    contact_methods: Mapping[int, Sequence[int]],
    *,
    now: datetime,
) -> list[PlannedNotification]:
    """The messages one step sends: each user's rules, or every contact method of a user
    without rules; each (user, contact method) at most once per step (the earliest rule)."""
    planned: dict[tuple[int, int], PlannedNotification] = {}
    for user in dict.fromkeys(user_ids):
        user_rules = rules.get(user) or [
            NotificationRule(cm, 0) for cm in contact_methods.get(user, ())
        ]
        for rule in user_rules:
            at = now + timedelta(seconds=rule.delay_s)
            key = (user, rule.contact_method_id)
            if key not in planned or at < planned[key].not_before:
                planned[key] = PlannedNotification(user, rule.contact_method_id, at)
    return list(planned.values())
