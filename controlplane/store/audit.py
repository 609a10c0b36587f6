"""The audit log: every mutation writes one event in the same transaction as the change,
so a change without its event (or an event without its change) cannot be committed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.store.models import AuditEventRow


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    target_type: str,
    target_id: str | int,
    detail: dict[str, Any] | None = None,
) -> AuditEventRow:
    event = AuditEventRow(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        detail=detail or {},
    )
    session.add(event)
    session.flush()
    return event


def list_events(
    session: Session,
    *,
    target_type: str | None = None,
    target_id: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[AuditEventRow]:
    """Newest first; page with ``before_id`` (the smallest id of the previous page)."""
    query = select(AuditEventRow).order_by(AuditEventRow.id.desc()).limit(limit)
    if target_type is not None:
        query = query.where(AuditEventRow.target_type == target_type)
    if target_id is not None:
        query = query.where(AuditEventRow.target_id == target_id)
    if actor is not None:
        query = query.where(AuditEventRow.actor == actor)
    if action is not None:
        query = query.where(AuditEventRow.action == action)
    if before_id is not None:
        query = query.where(AuditEventRow.id < before_id)
    return list(session.scalars(query))
