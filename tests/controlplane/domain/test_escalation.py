"""Escalation positions (steps, repeats) and notification rule planning."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

from controlplane.domain import ValidationError
from controlplane.domain.escalation import EscalationPolicy
from controlplane.domain.escalation import EscalationStep
from controlplane.domain.escalation import NotificationRule
from controlplane.domain.escalation import Position
from controlplane.domain.escalation import Target
from controlplane.domain.escalation import TargetKind
from controlplane.domain.escalation import plan_notifications

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def _policy(repeat: int) -> EscalationPolicy:
    step = EscalationStep((Target(TargetKind.user, 1),), 300)
    return EscalationPolicy("p", (step, step), repeat)


def test_positions_walk_steps_then_repeat_then_stop() -> None:
    policy = _policy(repeat=1)
    walk = [Position(0, 0)]
    while (nxt := policy.after(walk[-1])) is not None:
        walk.append(nxt)
    assert walk == [Position(0, 0), Position(1, 0), Position(0, 1), Position(1, 1)]


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        (EscalationPolicy("p", ()), "steps"),
        (EscalationPolicy("p", (EscalationStep((), 0),)), "steps[0]"),
        (EscalationPolicy("p", (EscalationStep((Target(TargetKind.user, 1),), -1),)), "steps[0]"),
        (_policy(repeat=99), "repeat"),
    ],
)
def test_bad_policies_name_the_field(policy: EscalationPolicy, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        policy.validate()
    assert err.value.field == field


def test_rules_delay_messages_and_users_without_rules_get_every_method() -> None:
    planned = plan_notifications(
        [1, 2, 1],
        {1: [NotificationRule(10, 0), NotificationRule(11, 300)]},
        {1: [10, 11], 2: [20, 21]},
        now=NOW,
    )
    got = {(p.user_id, p.contact_method_id): p.not_before - NOW for p in planned}
    assert got == {
        (1, 10): timedelta(0),
        (1, 11): timedelta(seconds=300),
        (2, 20): timedelta(0),
        (2, 21): timedelta(0),
    }
