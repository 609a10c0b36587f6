"""The one-rollout-per-engine rule lives in the database, so two racing requests cannot both
start one. (The rollout state machine itself is the guard's; this tests the storage rule.)"""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controlplane.schemas.engines import EngineCreate
from controlplane.store import engines
from controlplane.store.models import RolloutRow


def _rollout(engine_id: int, state: str) -> RolloutRow:
    return RolloutRow(engine_id=engine_id, reason="manual", actor="t", state=state)


def test_second_active_rollout_is_refused(session: Session) -> None:
    with session.begin():
        data = EngineCreate.model_validate({"name": "e", "url": "http://127.0.0.1:1"})
        eid = engines.add_engine(session, data=data, actor="t").id
        session.add(_rollout(eid, "baking"))
    with pytest.raises(IntegrityError), session.begin():
        session.add(_rollout(eid, "pending"))
        session.flush()


def test_finished_rollouts_do_not_block_a_new_one(session: Session) -> None:
    with session.begin():
        data = EngineCreate.model_validate({"name": "e", "url": "http://127.0.0.1:1"})
        eid = engines.add_engine(session, data=data, actor="t").id
        for state in ("committed", "rolled_back", "failed", "applying"):
            session.add(_rollout(eid, state))
            session.flush()
