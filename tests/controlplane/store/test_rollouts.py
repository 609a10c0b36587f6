from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy import update
from sqlalchemy.orm import Session

from controlplane.domain import ConflictError
from controlplane.domain import RolloutState
from controlplane.domain.rollouts import ACTIVE
from controlplane.schemas.engines import EngineCreate
from controlplane.store import audit
from controlplane.store import engines
from controlplane.store import rollouts
from controlplane.store.base import utcnow
from controlplane.store.database import make_session_factory
from controlplane.store.models import ACTIVE_ROLLOUT_STATES
from controlplane.store.models import RolloutRow


def _engine(session: Session, name: str = "e") -> int:
    data = EngineCreate.model_validate({"name": name, "url": "http://127.0.0.1:1"})
    return engines.add_engine(session, data=data, actor="t").id


def _start(session: Session, engine_id: int) -> rollouts.RolloutRow:
    return rollouts.start_rollout(
        session,
        engine_id=engine_id,
        from_config_id=None,
        to_config_id=None,
        reason="manual",
        actor="user:a",
    )


def test_index_and_state_machine_agree_on_what_is_active() -> None:
    assert set(ACTIVE_ROLLOUT_STATES) == {s.value for s in ACTIVE}


def test_happy_path_is_persisted_and_audited(session: Session) -> None:
    with session.begin():
        eid = _engine(session)
        row = _start(session, eid)
        for state in (RolloutState.applying, RolloutState.baking, RolloutState.committed):
            rollouts.move(session, row, state, actor="guard", evidence={state.value: True})
    with session.begin():
        stored = rollouts.get_rollout(session, row.id)
        assert stored.state == "committed" and stored.finished_at is not None
        assert stored.evidence == {"applying": True, "baking": True, "committed": True}
        actions = [e.action for e in audit.list_events(session, target_type="rollout")]
        assert actions == [
            "rollout.committed",
            "rollout.baking",
            "rollout.applying",
            "rollout.start",
        ]


def test_second_rollout_for_the_same_engine_is_a_conflict(session: Session) -> None:
    with session.begin():
        eid = _engine(session)
        first = _start(session, eid)
    with pytest.raises(ConflictError, match=f"rollout {first.id}"), session.begin():
        _start(session, eid)
    with session.begin():  # another engine is not blocked
        _start(session, _engine(session, "other"))


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ((), RolloutState.baking),
        (
            (RolloutState.applying, RolloutState.baking, RolloutState.committed),
            RolloutState.failed,
        ),
        ((RolloutState.failed,), RolloutState.applying),
    ],
)
def test_illegal_moves_are_refused(
    session: Session, path: tuple[RolloutState, ...], illegal: RolloutState
) -> None:
    with session.begin():
        row = _start(session, _engine(session))
        for state in path:
            rollouts.move(session, row, state, actor="t")
    with pytest.raises(ConflictError), session.begin():
        rollouts.move(session, row, illegal, actor="t")


def test_a_stale_reader_cannot_move_a_rollout_moved_by_someone_else(
    session: Session, db_engine: Engine
) -> None:
    with session.begin():
        row = _start(session, _engine(session))
        rollouts.move(session, row, RolloutState.applying, actor="guard")
    with session.begin():
        stale = rollouts.get_rollout(session, row.id)  # the guard read "applying" ...
        with make_session_factory(db_engine)() as other, other.begin():  # ... reconcile won
            rollouts.move(
                other, rollouts.get_rollout(other, row.id), RolloutState.failed, actor="r"
            )
        with pytest.raises(ConflictError, match="someone else"):
            rollouts.move(session, stale, RolloutState.baking, actor="guard")


def test_unfinished_rollouts_are_found_for_reconcile(session: Session) -> None:
    with session.begin():
        a = _start(session, _engine(session, "a"))
        b = _start(session, _engine(session, "b"))
        rollouts.move(session, b, RolloutState.failed, actor="t")
    with session.begin():
        assert [r.id for r in rollouts.unfinished_rollouts(session)] == [a.id]


def test_the_heartbeat_renews_the_lease_and_carries_a_rollback_request(
    session: Session,
) -> None:
    with session.begin():
        row = _start(session, _engine(session))
        first = row.heartbeat_at
    with session.begin():
        assert rollouts.stamp_heartbeat(session, row.id) is True
    with session.begin():
        session.refresh(row)
        assert first is not None and row.heartbeat_at is not None and row.heartbeat_at >= first
        rollouts.request_rollback(session, row, actor="user:op")
    with session.begin():
        assert rollouts.stamp_heartbeat(session, row.id) is False  # the runner must stop
        assert rollouts.stamp_heartbeat(session, row.id + 1000) is False  # gone


def test_of_two_reconcilers_only_one_claims_an_abandoned_rollout(
    session: Session, db_engine: Engine
) -> None:
    with session.begin():
        row = _start(session, _engine(session))
    cutoff = utcnow() - timedelta(seconds=10)
    with session.begin():  # stamped just now: a live owner, nobody may claim it
        assert not rollouts.claim_abandoned(session, row.id, cutoff)
    with session.begin():  # its owner died a minute ago
        session.execute(
            update(RolloutRow)
            .where(RolloutRow.id == row.id)
            .values(heartbeat_at=utcnow() - timedelta(seconds=60))
        )
    with session.begin():
        assert rollouts.claim_abandoned(session, row.id, cutoff)
    with make_session_factory(db_engine)() as other, other.begin():
        assert not rollouts.claim_abandoned(other, row.id, cutoff)  # the claim is a stamp
