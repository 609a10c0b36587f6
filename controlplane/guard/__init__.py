"""Layer 2: every change to a live engine bakes under watch and rolls back on SLO breach.

``propose`` validates a change and records a pending rollout; ``RolloutRunner`` takes it to
a terminal state; ``reconcile`` settles rollouts a crashed process left behind;
``GuardService`` runs all of that inside the API server. See docs/guard.md.
"""

from controlplane.guard.events import EventBus
from controlplane.guard.events import GuardEvent
from controlplane.guard.proposals import propose
from controlplane.guard.reconcile import reconcile
from controlplane.guard.runner import RolloutRunner
from controlplane.guard.runner import restore_last_known_good
from controlplane.guard.service import GuardService

__all__ = [
    "EventBus",
    "GuardEvent",
    "GuardService",
    "RolloutRunner",
    "propose",
    "reconcile",
    "restore_last_known_good",
]
