"""An engine's health watch over HTTP: its settings and state, and per-engine overrides."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi import Request

from controlplane.api.deps import Operator
from controlplane.api.deps import SessionDep
from controlplane.api.deps import Viewer
from controlplane.api.deps import actor
from controlplane.api.params import EngineRef
from controlplane.scheduler.health_watch import describe
from controlplane.scheduler.health_watch import update
from controlplane.schemas.health_watch import HealthWatchRead
from controlplane.schemas.health_watch import HealthWatchUpdate
from controlplane.settings import Settings
from controlplane.store import engines

router = APIRouter(prefix="/api/v1", tags=["Health watch"])


@router.get("/engines/{engine}/health-watch", response_model=HealthWatchRead)
def get_health_watch(
    engine: EngineRef, request: Request, session: SessionDep, who: Viewer
) -> HealthWatchRead:
    settings: Settings = request.app.state.settings
    with session.begin():
        row = engines.get_engine(session, engine)
        return describe(session, row.id, row.name, settings.health_watch)


@router.put("/engines/{engine}/health-watch", response_model=HealthWatchRead)
def put_health_watch(
    engine: EngineRef,
    body: HealthWatchUpdate,
    request: Request,
    session: SessionDep,
    who: Operator,
) -> HealthWatchRead:
    """Fields given are set (``null``: back to the default); fields left out are kept."""
    settings: Settings = request.app.state.settings
    with session.begin():
        row = engines.get_engine(session, engine)
        return update(
            session, row.id, row.name, body, defaults=settings.health_watch, actor=actor(who)
        )
