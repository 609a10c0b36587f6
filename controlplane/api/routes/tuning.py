"""Tuning runs over HTTP: start (validated and recorded in the request, run in the
background), stop, resume, inspect. The runs execute in this process's tuning service,
created with the first request that needs it; before it starts anything it fails runs a
crashed process left ``running`` (see docs/tuning.md)."""

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
from controlplane.schemas.tuning import TrialRead
from controlplane.schemas.tuning import TuningCreate
from controlplane.schemas.tuning import TuningRunRead
from controlplane.settings import Settings
from controlplane.store import engines
from controlplane.store import tuning
from tuner import TuningService
from tuner import list_trials
from tuner import request_stop
from tuner import resume_run
from tuner import start_run
from tuner import storage_url
from tuner import study_exists

router = APIRouter(prefix="/api/v1", tags=["Tuning"])


def _service(request: Request) -> TuningService:
    service: TuningService | None = request.app.state.tuning
    if service is None:
        raise ConflictError("the tuning service is not running in this process")
    return service


@router.post("/engines/{engine}/tuning-runs", response_model=TuningRunRead, status_code=202)
def start_tuning(
    engine: EngineRef, body: TuningCreate, request: Request, session: SessionDep, who: Operator
) -> TuningRunRead:
    """Validate and record a tuning run, then run it in the background."""
    service = _service(request)
    settings: Settings = request.app.state.settings
    with session.begin():
        row = engines.get_engine(session, engine)
        adapter = request.app.state.adapter_factory(engines.engine_target(row))
        try:
            run = start_run(
                session,
                engine_ref=engine,
                request=body,
                adapter=adapter,
                policy=settings.tuner,
                actor=actor(who),
            )
        finally:
            adapter.close()
        read = TuningRunRead.model_validate(run)
    service.submit(read.id)
    return read


@router.get("/tuning-runs", response_model=list[TuningRunRead])
def list_tuning_runs(
    session: SessionDep,
    who: Viewer,
    engine: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[TuningRunRead]:
    with session.begin():
        engine_id = engines.get_engine(session, engine).id if engine else None
        rows = tuning.list_runs(session, engine_id=engine_id, limit=limit)
        return [TuningRunRead.model_validate(r) for r in rows]


@router.get("/tuning-runs/{run_id}", response_model=TuningRunRead)
def get_tuning_run(run_id: RowId, session: SessionDep, who: Viewer) -> TuningRunRead:
    with session.begin():
        return TuningRunRead.model_validate(tuning.get_run(session, run_id))


@router.get("/tuning-runs/{run_id}/trials", response_model=list[TrialRead])
def get_tuning_trials(
    run_id: RowId, request: Request, session: SessionDep, who: Viewer
) -> list[TrialRead]:
    with session.begin():
        study = tuning.get_run(session, run_id).study_name
    # Opening Optuna's storage before the tuner has made its tables would race it doing so.
    if not study_exists(request.app.state.db_engine, study):
        return []
    return list_trials(storage_url(request.app.state.db_engine), study)


@router.post("/tuning-runs/{run_id}/stop", status_code=202)
def stop_tuning_run(
    run_id: RowId, request: Request, session: SessionDep, who: Operator
) -> dict[str, Any]:
    """Stop after the current trial (the guard settles the rollout it is baking)."""
    with session.begin():
        state = request_stop(session, run_id, actor=actor(who))
    _service(request).stop(run_id)
    return {"run_id": run_id, "state": state}


@router.post("/tuning-runs/{run_id}/resume", response_model=TuningRunRead, status_code=202)
def resume_tuning_run(
    run_id: RowId, request: Request, session: SessionDep, who: Operator
) -> TuningRunRead:
    service = _service(request)
    with session.begin():
        resume_run(session, run_id, actor=actor(who))
        read = TuningRunRead.model_validate(tuning.get_run(session, run_id))
    service.submit(run_id)
    return read
