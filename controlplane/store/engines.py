"""Registered engines. Uniqueness is the database's job: a duplicate name surfaces as an
IntegrityError inside a SAVEPOINT and becomes :class:`ConflictError`, race-free."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controlplane.domain import ConflictError
from controlplane.domain import EngineTarget
from controlplane.domain import NotFoundError
from controlplane.schemas.engines import EngineCreate
from controlplane.schemas.engines import EngineUpdate
from controlplane.store import audit
from controlplane.store.models import EngineRow


def get_engine(session: Session, ref: str | int) -> EngineRow:
    """By id (an int, or a string of digits) or by name: names always start with a letter."""
    if isinstance(ref, int) or ref.isdigit():
        row = session.get(EngineRow, int(ref))
    else:
        row = session.scalars(select(EngineRow).where(EngineRow.name == ref)).one_or_none()
    if row is None:
        raise NotFoundError(f"engine {ref!r} not found")
    return row


def list_engines(session: Session) -> list[EngineRow]:
    return list(session.scalars(select(EngineRow).order_by(EngineRow.name)))


def add_engine(session: Session, *, data: EngineCreate, actor: str) -> EngineRow:
    row = EngineRow(**data.row_values())
    _flush_unique(session, row, data.name)
    audit.record(
        session,
        actor=actor,
        action="engine.create",
        target_type="engine",
        target_id=row.id,
        detail=_redacted(data.row_values()),
    )
    return row


def update_engine(
    session: Session, *, ref: str | int, data: EngineUpdate, actor: str
) -> EngineRow:
    row = get_engine(session, ref)
    changes = data.row_values()
    before = {key: getattr(row, key) for key in changes}
    for key, value in changes.items():
        setattr(row, key, value)
    _flush_unique(session, row, changes.get("name", row.name))
    audit.record(
        session,
        actor=actor,
        action="engine.update",
        target_type="engine",
        target_id=row.id,
        detail={"before": _redacted(before), "after": _redacted(changes)},
    )
    return row


def remove_engine(session: Session, *, ref: str | int, actor: str) -> None:
    row = get_engine(session, ref)
    engine_id, name = row.id, row.name
    session.delete(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="engine.delete",
        target_type="engine",
        target_id=engine_id,
        detail={"name": name},
    )


def _flush_unique(session: Session, row: EngineRow, name: str) -> None:
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        raise ConflictError(f"an engine named {name!r} already exists") from exc


def _redacted(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    if "admin_token" in out:
        out["admin_token"] = None if out["admin_token"] is None else "***"
    return out


def engine_target(row: EngineRow) -> EngineTarget:
    """The frozen description adapters are built from (rows never leave the store layer)."""
    return EngineTarget(
        name=row.name,
        kind=row.kind,
        url=row.url,
        metrics_url=row.metrics_url,
        admin_token=row.admin_token,
    )
