"""Load tests over HTTP: start (validated and recorded in the request, run in the
background), stop, read with their steps (see docs/loadtest.md)."""

from __future__ import annotations

from typing import Annotated
from typing import Any

from fastapi import APIRouter
from fastapi import Query
from fastapi import Request

from controlplane.api.deps import Operator
from controlplane.api.deps import SessionDep
from controlplane.api.deps import Viewer
from controlplane.api.deps import actor
from controlplane.api.params import EngineRef
from controlplane.api.params import RowId
from controlplane.domain import ConflictError
from controlplane.schemas.loadtest import LoadTestCreate
from controlplane.schemas.loadtest import LoadTestRead
from controlplane.schemas.loadtest import LoadTestStepRead
from controlplane.settings import Settings
from controlplane.store import engines
from controlplane.store import loadtests
from tuner.loadtest import LoadTestService
from tuner.loadtest import start_load_test

router = APIRouter(prefix="/api/v1", tags=["Load tests"])


def _service(request: Request) -> LoadTestService:
    service: LoadTestService | None = request.app.state.loadtests
    if service is None:
        raise ConflictError("the load-test service is not running in this process")
    return service


@router.post("/engines/{engine}/load-tests", response_model=LoadTestRead, status_code=202)
def start(
    engine: EngineRef, body: LoadTestCreate, request: Request, session: SessionDep, who: Operator
) -> LoadTestRead:
    """Validate and record a load test, then run it in the background."""
    service = _service(request)
    settings: Settings = request.app.state.settings
    with session.begin():
        row = start_load_test(
            session, engine_ref=engine, request=body, policy=settings.loadtest, actor=actor(who)
        )
        read = LoadTestRead.model_validate(row)
    service.submit(read.id)
    return read


@router.get("/load-tests", response_model=list[LoadTestRead])
def list_load_tests(
    session: SessionDep,
    who: Viewer,
    engine: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[LoadTestRead]:
    with session.begin():
        engine_id = engines.get_engine(session, engine).id if engine else None
        rows = loadtests.list_(session, engine_id=engine_id, limit=limit)
        return [LoadTestRead.model_validate(r) for r in rows]


@router.get("/load-tests/{load_test_id}", response_model=LoadTestRead)
def get_load_test(load_test_id: RowId, session: SessionDep, who: Viewer) -> LoadTestRead:
    """One load test with its steps (those measured so far, while it runs)."""
    with session.begin():
        read = LoadTestRead.model_validate(loadtests.get(session, load_test_id))
        read.steps = [
            LoadTestStepRead.model_validate(s) for s in loadtests.steps(session, load_test_id)
        ]
        return read


@router.post("/load-tests/{load_test_id}/stop", status_code=202)
def stop_load_test(
    load_test_id: RowId, request: Request, session: SessionDep, who: Operator
) -> dict[str, Any]:
    """Stop after the current window; the steps measured so far are kept."""
    with session.begin():
        loadtests.request_stop(session, load_test_id, actor=actor(who))
    _service(request).stop(load_test_id)
    return {"load_test_id": load_test_id, "stop": "requested"}
