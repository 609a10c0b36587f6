from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Query

from controlplane.api.deps import SessionDep
from controlplane.api.deps import Viewer
from controlplane.domain.ids import MAX_AUDIT_ID
from controlplane.schemas.audit import AuditEventRead
from controlplane.store import audit

router = APIRouter(prefix="/api/v1/audit", tags=["Audit"])


@router.get("", response_model=list[AuditEventRead])
def list_audit_events(
    session: SessionDep,
    who: Viewer,
    target_type: Annotated[str | None, Query(max_length=32)] = None,
    target_id: Annotated[str | None, Query(max_length=128)] = None,
    actor: Annotated[str | None, Query(max_length=128)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_AUDIT_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditEventRead]:
    """Newest first. Page backwards with ``before_id`` set to the last id you received."""
    with session.begin():
        rows = audit.list_events(
            session,
            target_type=target_type,
            target_id=target_id,
            actor=actor,
            action=action,
            before_id=before_id,
            limit=limit,
        )
        return [AuditEventRead.model_validate(r) for r in rows]
