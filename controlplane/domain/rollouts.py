"""The rollout state machine: every change to a live engine moves through these states.

``pending -> applying -> baking -> committed | rolled_back | failed``; ``pending`` may also
end in ``failed`` (refused before anything was sent) and ``applying`` in ``failed`` or
``rolled_back``. Terminal states never change again. The transitions live here, once, so
the store refuses an illegal move whoever asks for it.
"""

from __future__ import annotations

from enum import StrEnum


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


TERMINAL = frozenset({RolloutState.committed, RolloutState.rolled_back, RolloutState.failed})
ACTIVE = frozenset(RolloutState) - TERMINAL

TRANSITIONS: dict[RolloutState, frozenset[RolloutState]] = {
    RolloutState.pending: frozenset({RolloutState.applying, RolloutState.failed}),
    RolloutState.applying: frozenset(
        {RolloutState.baking, RolloutState.failed, RolloutState.rolled_back}
    ),
    RolloutState.baking: frozenset(
        {RolloutState.committed, RolloutState.rolled_back, RolloutState.failed}
    ),
    RolloutState.committed: frozenset(),
    RolloutState.rolled_back: frozenset(),
    RolloutState.failed: frozenset(),
}


def can_move(current: RolloutState, to: RolloutState) -> bool:
    return to in TRANSITIONS[current]
