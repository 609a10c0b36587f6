from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from controlplane.domain import ConflictError
from controlplane.domain import NotFoundError
from controlplane.schemas.engines import EngineCreate
from controlplane.schemas.engines import EngineUpdate
from controlplane.store import audit
from controlplane.store import engines


def _create(**overrides: Any) -> EngineCreate:
    values: dict[str, Any] = {"name": "llm-a", "url": "http://127.0.0.1:8000/"}
    values.update(overrides)
    return EngineCreate.model_validate(values)


def test_add_get_list_by_name_and_id(session: Session) -> None:
    with session.begin():
        row = engines.add_engine(session, data=_create(admin_token="s3cret"), actor="user:a")
    with session.begin():
        assert engines.get_engine(session, "llm-a").id == row.id
        assert engines.get_engine(session, str(row.id)).name == "llm-a"
        assert [e.name for e in engines.list_engines(session)] == ["llm-a"]
        stored = engines.get_engine(session, row.id)
        assert stored.url == "http://127.0.0.1:8000"  # trailing slash normalised
        assert engines.engine_target(stored).admin_token == "s3cret"


def test_duplicate_name_is_a_conflict_and_leaves_the_first(session: Session) -> None:
    with session.begin():
        engines.add_engine(session, data=_create(), actor="t")
    with pytest.raises(ConflictError), session.begin():
        engines.add_engine(session, data=_create(url="http://127.0.0.1:9/"), actor="t")
    with session.begin():
        assert [e.url for e in engines.list_engines(session)] == ["http://127.0.0.1:8000"]


def test_rename_onto_an_existing_name_is_a_conflict(session: Session) -> None:
    with session.begin():
        engines.add_engine(session, data=_create(), actor="t")
        engines.add_engine(session, data=_create(name="llm-b"), actor="t")
    with pytest.raises(ConflictError), session.begin():
        engines.update_engine(session, ref="llm-b", data=EngineUpdate(name="llm-a"), actor="t")


def test_update_changes_only_given_fields_and_audits_before_after(session: Session) -> None:
    with session.begin():
        engines.add_engine(session, data=_create(description="x"), actor="t")
    with session.begin():
        data = EngineUpdate.model_validate({"approval_mode": "manual", "admin_token": "new"})
        row = engines.update_engine(session, ref="llm-a", data=data, actor="user:op")
        assert (row.approval_mode, row.description) == ("manual", "x")
        assert engines.admin_token(session, row) == "new"
    with session.begin():
        (event,) = audit.list_events(session, action="engine.update")
        assert event.actor == "user:op"
        assert event.detail["after"] == {"approval_mode": "manual", "admin_token": "***"}
        assert event.detail["before"]["approval_mode"] == "auto"


def test_remove_deletes_and_audits(session: Session) -> None:
    with session.begin():
        row = engines.add_engine(session, data=_create(), actor="t")
    with session.begin():
        engines.remove_engine(session, ref="llm-a", actor="user:b")
    with session.begin():
        with pytest.raises(NotFoundError):
            engines.get_engine(session, row.id)
        actions = [e.action for e in audit.list_events(session, target_id=str(row.id))]
        assert actions == ["engine.delete", "engine.create"]


def test_a_failed_transaction_leaves_neither_change_nor_audit(session: Session) -> None:
    with pytest.raises(RuntimeError), session.begin():
        engines.add_engine(session, data=_create(), actor="t")
        raise RuntimeError("boom after the flush")
    with session.begin():
        assert engines.list_engines(session) == []
        assert audit.list_events(session) == []
