"""The one state-change helper on a real database (SQLite and PostgreSQL): it moves a row
and records who did, refuses an illegal move without touching the row, and of two movers
that read the same state exactly one wins."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from controlplane.domain import ConflictError
from controlplane.domain import IllegalTransitionError
from controlplane.domain import RolloutState
from controlplane.domain import TuningRunState
from controlplane.domain.rollouts import ROLLOUT_LIFECYCLE
from controlplane.domain.tuning import TUNING_RUN_LIFECYCLE
from controlplane.schemas.engines import EngineCreate
from controlplane.store import audit
from controlplane.store import engines
from controlplane.store import rollouts
from controlplane.store import tuning
from controlplane.store.database import make_session_factory
from controlplane.store.lifecycle import transition
from controlplane.store.models import RolloutRow


def _rollout(session: Session) -> RolloutRow:
    data = EngineCreate.model_validate({"name": "e", "url": "http://127.0.0.1:1"})
    engine = engines.add_engine(session, data=data, actor="t")
    return rollouts.start_rollout(
        session,
        engine_id=engine.id,
        from_config_id=None,
        to_config_id=None,
        reason="manual",
        actor="t",
    )


def _events(session: Session, row_id: int) -> list[tuple[str, str, dict[str, object]]]:
    events = audit.list_events(session, target_type="rollout", target_id=str(row_id))
    return [(e.actor, e.action, dict(e.detail)) for e in reversed(events)]


def test_a_move_changes_the_row_and_records_who_made_it(
    session: Session, db_engine: Engine
) -> None:
    with session.begin():
        row = _rollout(session)
        moved = transition(
            session,
            row,
            RolloutState.applying,
            lifecycle=ROLLOUT_LIFECYCLE,
            actor="user:ann",
            values={"error": "noted"},
            detail={"why": "test"},
        )
        assert moved is row and row.state == "applying"
    with make_session_factory(db_engine)() as other:
        stored = rollouts.get_rollout(other, row.id)
        assert (stored.state, stored.error, stored.finished_at) == ("applying", "noted", None)
        assert _events(other, row.id)[-1] == (
            "user:ann",
            "rollout.applying",
            {"from": "pending", "why": "test"},
        )
    with session.begin():
        transition(session, row, RolloutState.failed, lifecycle=ROLLOUT_LIFECYCLE, actor="g")
    with make_session_factory(db_engine)() as other:
        assert rollouts.get_rollout(other, row.id).finished_at is not None  # terminal


def test_an_illegal_move_is_refused_and_changes_nothing(
    session: Session, db_engine: Engine
) -> None:
    with session.begin():
        row = _rollout(session)
    row_id, before = row.id, row.updated  # a rolled-back session expires its objects
    with pytest.raises(IllegalTransitionError, match=f"rollout {row_id} cannot move") as info:
        with session.begin():
            transition(
                session, row, RolloutState.committed, lifecycle=ROLLOUT_LIFECYCLE, actor="x"
            )
    assert (info.value.current, info.value.to) == ("pending", "committed")
    with make_session_factory(db_engine)() as other:
        stored = rollouts.get_rollout(other, row_id)
        assert (stored.state, stored.updated, stored.finished_at) == ("pending", before, None)
        assert [action for _, action, _ in _events(other, row_id)] == ["rollout.start"]


def test_of_two_movers_that_read_the_same_state_exactly_one_wins(
    session: Session, db_engine: Engine
) -> None:
    with session.begin():
        row_id = _rollout(session).id
    factory = make_session_factory(db_engine)
    read = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def mover(to: RolloutState) -> None:
        with factory() as s:
            with s.begin():
                mine = rollouts.get_rollout(s, row_id)  # both read "pending" ...
            read.wait(timeout=10)
            try:
                with s.begin():  # ... then both try to move it
                    transition(s, mine, to, lifecycle=ROLLOUT_LIFECYCLE, actor=f"m-{to}")
                outcomes[to.value] = "won"
            except IllegalTransitionError:
                outcomes[to.value] = "illegal"
            except ConflictError:
                outcomes[to.value] = "lost"

    threads = [
        threading.Thread(target=mover, args=(to,))
        for to in (RolloutState.applying, RolloutState.failed)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes.values()) == ["lost", "won"], outcomes
    winner = next(state for state, outcome in outcomes.items() if outcome == "won")
    with factory() as other:
        assert rollouts.get_rollout(other, row_id).state == winner
        moves = [e for e in _events(other, row_id) if e[1] != "rollout.start"]
        assert moves == [(f"m-{winner}", f"rollout.{winner}", {"from": "pending"})]


def test_expected_sources_and_extra_columns_in_one_update(session: Session) -> None:
    with session.begin():
        engine_id = _rollout(session).engine_id
        run = tuning.create_run(
            session, engine_id=engine_id, study_name="s", objective="goodput", spec={}, actor="t"
        )
        for to in (TuningRunState.running, TuningRunState.stopping):
            tuning.move(session, run, to, actor="t")
        assert run.started_at is not None
        transition(
            session,
            run,
            TuningRunState.stopped,
            lifecycle=TUNING_RUN_LIFECYCLE,
            actor="tuner",
            expect=(TuningRunState.running, TuningRunState.stopping),
            values={"result": {"done": 3}},
            action="tuning",
        )
    with session.begin():
        stored = tuning.get_run(session, run.id)
        assert (stored.state, stored.result) == ("stopped", {"done": 3})
        assert stored.finished_at is not None
        last = audit.list_events(session, target_type="tuning_run", limit=1)[0]
        assert (last.action, last.detail) == ("tuning.stopped", {"from": ["running", "stopping"]})
        # Resumable: back to pending, and running again clears the finish.
        tuning.move(session, stored, TuningRunState.pending, actor="op")
        tuning.move(session, stored, TuningRunState.running, actor="tuner")
        assert stored.finished_at is None
        tuning.move(session, stored, TuningRunState.done, actor="tuner")
    with pytest.raises(ConflictError, match="it has finished"), session.begin():
        tuning.move(session, stored, TuningRunState.pending, actor="op")
