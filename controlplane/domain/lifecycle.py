"""One shape for everything with states: an enum, a transition table, and one check.

Rollouts, tuning runs, chaos experiments, scheduled-job runs (and the on-call lifecycles that
follow) each declare a :class:`Lifecycle` here in the domain layer. The store moves a row only
through ``controlplane.store.lifecycle.transition``, a compare-and-set UPDATE that calls
:meth:`Lifecycle.check` first, so an illegal move is refused the same way whoever asks, and a
race between two movers has exactly one winner.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from enum import StrEnum
from typing import Generic
from typing import TypeVar

from controlplane.domain.errors import IllegalTransitionError
from controlplane.domain.errors import ValidationError

S = TypeVar("S", bound=StrEnum)


class Lifecycle(Generic[S]):
    """The legal moves of one kind of object.

    ``terminal`` states are those the object is finished in; by default, the states with no
    way out. A state may be terminal and still have a way out when it is resumable (a stopped
    tuning run may go back to ``pending``): pass ``terminal`` explicitly then.
    """

    def __init__(
        self,
        name: str,
        states: type[S],
        transitions: Mapping[S, Iterable[S]],
        *,
        terminal: Iterable[S] | None = None,
    ) -> None:
        missing = set(states) - set(transitions)
        if missing:
            raise ValueError(f"{name}: no transitions given for {sorted(missing)}")
        self.name = name
        self.states = states
        self.transitions: dict[S, frozenset[S]] = {
            s: frozenset(targets) for s, targets in transitions.items()
        }
        self.terminal: frozenset[S] = (
            frozenset(terminal)
            if terminal is not None
            else frozenset(s for s, out in self.transitions.items() if not out)
        )
        self.active: frozenset[S] = frozenset(states) - self.terminal

    def parse(self, value: str) -> S:
        """The state named ``value``; a stored or requested name that is not one is refused."""
        try:
            return self.states(value)
        except ValueError as exc:
            known = ", ".join(s.value for s in self.states)
            raise ValidationError(
                f"{value!r} is not a {self.name} state (known: {known})", field="state"
            ) from exc

    def can_move(self, current: S, to: S) -> bool:
        return to in self.transitions[current]

    def check(self, current: S, to: S) -> None:
        """Raise :class:`IllegalTransitionError` unless ``current -> to`` is a legal move."""
        if not self.can_move(current, to):
            raise IllegalTransitionError(
                f"{self.name} cannot move from {current.value} to {to.value}",
                lifecycle=self.name,
                current=current.value,
                to=to.value,
            )

    def moves(self) -> list[tuple[S, S]]:
        """Every legal move, for tests and documentation."""
        return [(s, t) for s in self.states for t in sorted(self.transitions[s])]
