from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controlplane.schemas.engines import EngineCreate
from controlplane.store import configs
from controlplane.store import engines
from controlplane.store.models import EngineConfigRow


def _engine_id(session: Session) -> int:
    data = EngineCreate.model_validate({"name": "e", "url": "http://127.0.0.1:1"})
    return engines.add_engine(session, data=data, actor="t").id


def test_versions_count_up_per_engine(session: Session) -> None:
    with session.begin():
        eid = _engine_id(session)
        v1 = configs.record_config(
            session, engine_id=eid, config={"max_batch_size": 4}, source="register", actor="t"
        )
        v2 = configs.record_config(
            session, engine_id=eid, config={"max_batch_size": 8}, source="manual", actor="t"
        )
    assert (v1.version, v2.version) == (1, 2)
    with session.begin():
        assert [c.version for c in configs.config_history(session, eid)] == [2, 1]
        latest = configs.latest_config(session, eid)
        assert latest is not None and latest.config == {"max_batch_size": 8}


def test_last_known_good_moves_and_stays_unique(session: Session) -> None:
    with session.begin():
        eid = _engine_id(session)
        v1 = configs.record_config(session, engine_id=eid, config={}, source="r", actor="t")
        v2 = configs.record_config(session, engine_id=eid, config={}, source="r", actor="t")
        configs.mark_last_known_good(session, v1)
        configs.mark_last_known_good(session, v2)
    with session.begin():
        lkg = configs.last_known_good(session, eid)
        assert lkg is not None and lkg.id == v2.id
        flags = [c.is_last_known_good for c in configs.config_history(session, eid)]
        assert flags == [True, False]


def test_database_refuses_two_last_known_good_versions(session: Session) -> None:
    """The invariant holds even for code that bypasses mark_last_known_good."""
    with session.begin():
        eid = _engine_id(session)
    with pytest.raises(IntegrityError), session.begin():
        for version in (1, 2):
            session.add(
                EngineConfigRow(
                    engine_id=eid,
                    version=version,
                    config={},
                    source="r",
                    created_by="t",
                    is_last_known_good=True,
                )
            )
            session.flush()
