"""The rollout state machine: every change to a live engine moves through these states.

``pending -> applying -> baking -> committed | rolled_back | failed``; ``pending`` may also
end in ``failed`` (refused before anything was sent) and ``applying`` in ``failed`` or
``rolled_back``. Terminal states never change again. The transitions live here, once, so
the store refuses an illegal move whoever asks for it.
"""

from __future__ import annotations

from enum import StrEnum

from controlplane.domain.lifecycle import Lifecycle


class RolloutState(StrEnum):
    pending = "pending"
    applying = "applying"
    baking = "baking"
    committed = "committed"
    rolled_back = "rolled_back"
    failed = "failed"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


ROLLOUT_LIFECYCLE: Lifecycle[RolloutState] = Lifecycle(
    "rollout",
    RolloutState,
    {
        RolloutState.pending: {RolloutState.applying, RolloutState.failed},
        RolloutState.applying: {
            RolloutState.baking,
            RolloutState.failed,
            RolloutState.rolled_back,
        },
        RolloutState.baking: {
            RolloutState.committed,
            RolloutState.rolled_back,
            RolloutState.failed,
        },
        RolloutState.committed: set(),
        RolloutState.rolled_back: set(),
        RolloutState.failed: set(),
    },
)

TRANSITIONS: dict[RolloutState, frozenset[RolloutState]] = ROLLOUT_LIFECYCLE.transitions
TERMINAL: frozenset[RolloutState] = ROLLOUT_LIFECYCLE.terminal
ACTIVE: frozenset[RolloutState] = ROLLOUT_LIFECYCLE.active


def can_move(current: RolloutState, to: RolloutState) -> bool:
    return ROLLOUT_LIFECYCLE.can_move(current, to)
