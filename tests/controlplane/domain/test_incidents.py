"""Incident and notification lifecycles, the grouping key and the retry delay."""

from __future__ import annotations

import pytest

from controlplane.domain import IllegalTransitionError
from controlplane.domain.incidents import INCIDENT_LIFECYCLE
from controlplane.domain.incidents import NOTIFICATION_LIFECYCLE
from controlplane.domain.incidents import IncidentState
from controlplane.domain.incidents import NotificationState
from controlplane.domain.incidents import group_hash
from controlplane.domain.incidents import group_labels
from controlplane.domain.incidents import incident_title
from controlplane.domain.incidents import retry_delay_s


def test_incident_moves_include_reopen_and_exclude_resolved_to_acknowledged() -> None:
    assert INCIDENT_LIFECYCLE.can_move(IncidentState.resolved, IncidentState.triggered)
    assert INCIDENT_LIFECYCLE.can_move(IncidentState.snoozed, IncidentState.triggered)
    with pytest.raises(IllegalTransitionError):
        INCIDENT_LIFECYCLE.check(IncidentState.resolved, IncidentState.acknowledged)
    assert INCIDENT_LIFECYCLE.terminal == {IncidentState.resolved}


def test_notification_outbox_moves() -> None:
    lc = NOTIFICATION_LIFECYCLE
    assert lc.can_move(NotificationState.pending, NotificationState.sending)
    assert lc.can_move(NotificationState.sending, NotificationState.pending)  # a retry
    assert not lc.can_move(NotificationState.sent, NotificationState.pending)
    assert not lc.can_move(NotificationState.pending, NotificationState.sent)
    assert NotificationState.suppressed in lc.terminal


def test_grouping_key_depends_on_grouped_labels_and_route_only() -> None:
    by = ("alertname", "engine")
    a = {"alertname": "HighP99", "engine": "llm-a", "instance": "n1"}
    b = {"alertname": "HighP99", "engine": "llm-a", "instance": "n2"}
    c = {"alertname": "HighP99", "engine": "llm-b"}
    assert group_hash(a, by, route="default") == group_hash(b, by, route="default")
    assert group_hash(a, by, route="default") != group_hash(c, by, route="default")
    assert group_hash(a, by, route="default") != group_hash(a, by, route="gpu")
    assert group_labels({"alertname": "X"}, by) == {"alertname": "X", "engine": ""}


def test_title_uses_summary_and_engine() -> None:
    assert incident_title({"alertname": "Down", "engine": "e1"}, {"summary": "gone"}) == (
        "Down on e1: gone"
    )
    assert incident_title({"alertname": "Down"}, {}) == "Down"


def test_retry_delay_grows_is_capped_jittered_and_honours_retry_after() -> None:
    low = [retry_delay_s(n, base_s=1, cap_s=60, jitter=0.0) for n in range(1, 9)]
    high = [retry_delay_s(n, base_s=1, cap_s=60, jitter=0.999) for n in range(1, 9)]
    assert low == sorted(low) and low[0] == 0.5 and low[-1] == 30
    assert all(h > lo for h, lo in zip(high, low, strict=True)) and max(high) < 60
    assert retry_delay_s(1, base_s=1, cap_s=60, jitter=0.0, retry_after_s=17) == 17
