from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Query
from fastapi import Response

from controlplane.api.deps import Operator
from controlplane.api.deps import SessionDep
from controlplane.api.deps import Viewer
from controlplane.api.deps import actor
from controlplane.api.params import EngineRef
from controlplane.schemas.engines import EngineConfigRead
from controlplane.schemas.engines import EngineCreate
from controlplane.schemas.engines import EngineRead
from controlplane.schemas.engines import EngineUpdate
from controlplane.store import configs
from controlplane.store import engines

router = APIRouter(prefix="/api/v1/engines", tags=["Engines"])


@router.post("", status_code=201, response_model=EngineRead)
def create_engine(data: EngineCreate, session: SessionDep, who: Operator) -> EngineRead:
    with session.begin():
        row = engines.add_engine(session, data=data, actor=actor(who))
        return EngineRead.from_row(row)


@router.get("", response_model=list[EngineRead])
def list_engines(session: SessionDep, who: Viewer) -> list[EngineRead]:
    with session.begin():
        return [EngineRead.from_row(row) for row in engines.list_engines(session)]


@router.get("/{engine}", response_model=EngineRead)
def get_engine(engine: EngineRef, session: SessionDep, who: Viewer) -> EngineRead:
    with session.begin():
        return EngineRead.from_row(engines.get_engine(session, engine))


@router.patch("/{engine}", response_model=EngineRead)
def update_engine(
    engine: EngineRef, data: EngineUpdate, session: SessionDep, who: Operator
) -> EngineRead:
    with session.begin():
        row = engines.update_engine(session, ref=engine, data=data, actor=actor(who))
        return EngineRead.from_row(row)


@router.delete("/{engine}", status_code=204)
def delete_engine(engine: EngineRef, session: SessionDep, who: Operator) -> Response:
    with session.begin():
        engines.remove_engine(session, ref=engine, actor=actor(who))
    return Response(status_code=204)


@router.get("/{engine}/configs", response_model=list[EngineConfigRead])
def config_history(
    engine: EngineRef,
    session: SessionDep,
    who: Viewer,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[EngineConfigRead]:
    """Configuration versions, newest first; one may carry the last-known-good marker."""
    with session.begin():
        row = engines.get_engine(session, engine)
        history = configs.config_history(session, row.id, limit=limit)
        return [EngineConfigRead.model_validate(c) for c in history]
