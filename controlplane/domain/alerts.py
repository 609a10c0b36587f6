"""Alerts: one model for what Alertmanager sends, what the guard reports and what the control
plane's own detectors find.

An alert is identified by its fingerprint (Alertmanager's per-alert identity; ``guard:...`` and
``detector:...`` for the control plane's own), so a notification sent twice, or an alert raised
again by the next detector run, updates one row instead of adding one. Its state goes
``firing -> resolved`` and, when the same alert fires again, ``resolved -> firing``; every move
is kept as an alert event, so the row says where the alert is and its events say how it got
there.
"""

from __future__ import annotations

from enum import StrEnum

from controlplane.domain.lifecycle import Lifecycle


class AlertState(StrEnum):
    firing = "firing"
    resolved = "resolved"


class AlertSource(StrEnum):
    alertmanager = "alertmanager"
    guard = "guard"
    detector = "detector"


# Neither state is terminal: a resolved alert may fire again (a re-fire keeps its history).
ALERT_LIFECYCLE: Lifecycle[AlertState] = Lifecycle(
    "alert",
    AlertState,
    {
        AlertState.firing: {AlertState.resolved},
        AlertState.resolved: {AlertState.firing},
    },
    terminal=(),
)
