"""Every lifecycle declared in the domain: each legal move passes the check, and a move its
table leaves out is refused with the domain error that names the lifecycle and both states.

The lifecycles are found by looking through the domain's modules, so one added later is
walked here without anyone remembering to list it."""

from __future__ import annotations

import importlib
import pkgutil
from enum import StrEnum
from typing import Any

import pytest

import controlplane.domain
from controlplane.domain import ChaosState
from controlplane.domain import ConflictError
from controlplane.domain import IllegalTransitionError
from controlplane.domain import Lifecycle
from controlplane.domain import RolloutState
from controlplane.domain import TuningRunState
from controlplane.domain import ValidationError
from controlplane.domain.chaos import CHAOS_LIFECYCLE
from controlplane.domain.rollouts import ACTIVE
from controlplane.domain.rollouts import ROLLOUT_LIFECYCLE
from controlplane.domain.rollouts import TERMINAL
from controlplane.domain.rollouts import can_move
from controlplane.domain.tuning import FINAL
from controlplane.domain.tuning import TUNING_RUN_LIFECYCLE


def _declared() -> list[Lifecycle[Any]]:
    found: list[Lifecycle[Any]] = []
    for info in pkgutil.iter_modules(controlplane.domain.__path__):
        module = importlib.import_module(f"{controlplane.domain.__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, Lifecycle) and all(value is not f for f in found):
                found.append(value)
    return sorted(found, key=lambda lc: lc.name)


LIFECYCLES = _declared()


def _id(lifecycle: Lifecycle[Any]) -> str:
    return lifecycle.name


def test_the_persisted_lifecycles_are_declared_once_each() -> None:
    names = [lc.name for lc in LIFECYCLES]
    assert {"rollout", "tuning_run", "chaos_experiment"} <= set(names)
    assert len(names) == len(set(names))


@pytest.mark.parametrize("lifecycle", LIFECYCLES, ids=_id)
def test_every_legal_move_passes(lifecycle: Lifecycle[Any]) -> None:
    moves = lifecycle.moves()
    assert moves, f"{lifecycle.name} has no moves at all"
    for current, to in moves:
        assert lifecycle.can_move(current, to)
        lifecycle.check(current, to)
    # Every state is either finished or has a way on; nothing is stuck half-way.
    for state in lifecycle.states:
        assert state in lifecycle.terminal or lifecycle.transitions[state], state
    assert lifecycle.active == frozenset(lifecycle.states) - lifecycle.terminal


@pytest.mark.parametrize("lifecycle", LIFECYCLES, ids=_id)
def test_an_illegal_move_is_refused_with_a_conflict(lifecycle: Lifecycle[Any]) -> None:
    legal = set(lifecycle.moves())
    current, to = next(
        (s, t) for s in lifecycle.states for t in lifecycle.states if (s, t) not in legal
    )
    assert not lifecycle.can_move(current, to)
    with pytest.raises(IllegalTransitionError) as info:
        lifecycle.check(current, to)
    assert isinstance(info.value, ConflictError)  # HTTP 409 at the edge
    assert (info.value.lifecycle, info.value.current, info.value.to) == (
        lifecycle.name,
        current.value,
        to.value,
    )
    assert f"from {current.value} to {to.value}" in str(info.value)


@pytest.mark.parametrize("lifecycle", LIFECYCLES, ids=_id)
def test_a_name_that_is_no_state_is_a_validation_error(lifecycle: Lifecycle[Any]) -> None:
    first: StrEnum = next(iter(lifecycle.states))
    assert lifecycle.parse(first.value) is first
    with pytest.raises(ValidationError, match=f"not a {lifecycle.name} state") as info:
        lifecycle.parse("no-such-state")
    assert info.value.field == "state"


def _table(lifecycle: Lifecycle[Any]) -> set[tuple[str, str]]:
    return {(s.value, t.value) for s, t in lifecycle.moves()}


def test_rollout_moves_are_exactly_the_guards() -> None:
    assert _table(ROLLOUT_LIFECYCLE) == {
        ("pending", "applying"),
        ("pending", "failed"),
        ("applying", "baking"),
        ("applying", "failed"),
        ("applying", "rolled_back"),
        ("baking", "committed"),
        ("baking", "rolled_back"),
        ("baking", "failed"),
    }
    assert TERMINAL == {RolloutState.committed, RolloutState.rolled_back, RolloutState.failed}
    assert ACTIVE == {RolloutState.pending, RolloutState.applying, RolloutState.baking}
    assert RolloutState.committed.terminal and not RolloutState.baking.terminal
    assert can_move(RolloutState.baking, RolloutState.committed)
    assert not can_move(RolloutState.committed, RolloutState.baking)


def test_tuning_runs_stop_resume_and_finish() -> None:
    assert _table(TUNING_RUN_LIFECYCLE) == {
        ("pending", "running"),
        ("pending", "stopped"),
        ("running", "stopping"),
        *{(src, end) for src in ("running", "stopping") for end in ("done", "stopped")},
        *{(src, end) for src in ("running", "stopping") for end in ("failed", "interrupted")},
        ("stopped", "pending"),
        ("interrupted", "pending"),
    }
    assert TUNING_RUN_LIFECYCLE.terminal == {
        TuningRunState.done,
        TuningRunState.stopped,
        TuningRunState.failed,
        TuningRunState.interrupted,
    }
    # Finished but resumable, against finished for good.
    assert FINAL == {TuningRunState.done, TuningRunState.failed}


def test_chaos_experiments_end_once() -> None:
    assert _table(CHAOS_LIFECYCLE) == {
        ("running", "completed"),
        ("running", "aborted"),
        ("running", "failed"),
    }
    assert CHAOS_LIFECYCLE.active == {ChaosState.running}
