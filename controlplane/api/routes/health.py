"""Liveness and readiness: the only routes served without a token."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi import Request
from fastapi.responses import JSONResponse

from controlplane.domain import DomainError
from controlplane.store.database import check_reachable
from controlplane.store.schema import check_schema_current

router = APIRouter(tags=["Health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up and answering."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "store unreachable or schema outdated"}})
def readyz(request: Request) -> JSONResponse:
    """The store is reachable and its schema is the one this code needs."""
    engine = request.app.state.db_engine
    try:
        check_reachable(engine)
        check_schema_current(engine)
    except DomainError as exc:
        return JSONResponse({"status": "unavailable", "reason": str(exc)}, status_code=503)
    return JSONResponse({"status": "ready"})
