"""Chaos experiments over HTTP, admins only. ``POST`` checks, records and injects before it
answers (bad input: 422 with nothing applied); the hold and the cleanup run in a background
thread, and the fault's TTL is enforced by the watchdog even if this process dies."""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import APIRouter
from fastapi import Query
from fastapi import Request

from controlplane import chaos
from controlplane.api.deps import Admin
from controlplane.api.deps import SessionDep
from controlplane.api.deps import SettingsDep
from controlplane.api.deps import actor
from controlplane.api.deps import get_session_factory
from controlplane.api.params import RowId
from controlplane.chaos import runs as chaos_runs
from controlplane.schemas.chaos import ChaosExperimentRead
from controlplane.schemas.chaos import ChaosRunCreate
from controlplane.store import chaos as chaos_store

router = APIRouter(prefix="/api/v1/chaos", tags=["Chaos"])
ExperimentId = RowId


@router.post("/experiments", response_model=ChaosExperimentRead, status_code=202)
def run_experiment(
    body: ChaosRunCreate, request: Request, settings: SettingsDep, who: Admin
) -> ChaosExperimentRead:
    factory = get_session_factory(request)
    started = chaos_runs.start(factory, settings, body, actor=actor(who))
    worker = threading.Thread(
        target=chaos_runs.finish,
        args=(factory, started),
        kwargs={"actor": actor(who)},
        name=f"chaos-{started.experiment_id}",
        daemon=True,
    )
    worker.start()
    with factory() as session:
        return ChaosExperimentRead.model_validate(
            chaos_store.get_experiment(session, started.experiment_id)
        )


@router.get("/experiments", response_model=list[ChaosExperimentRead])
def list_experiments(
    session: SessionDep,
    who: Admin,
    state: Annotated[str | None, Query(max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ChaosExperimentRead]:
    with session.begin():
        rows = chaos_store.list_experiments(session, state=state, limit=limit)
        return [ChaosExperimentRead.model_validate(r) for r in rows]


@router.get("/experiments/{experiment_id}", response_model=ChaosExperimentRead)
def show_experiment(
    experiment_id: ExperimentId, session: SessionDep, who: Admin
) -> ChaosExperimentRead:
    with session.begin():
        return ChaosExperimentRead.model_validate(
            chaos_store.get_experiment(session, experiment_id)
        )


@router.post("/experiments/{experiment_id}/abort", response_model=ChaosExperimentRead)
def abort_experiment(
    experiment_id: ExperimentId, session: SessionDep, settings: SettingsDep, who: Admin
) -> ChaosExperimentRead:
    with session.begin():
        row = chaos_store.mark_aborted(session, experiment_id, actor=actor(who))
        read = ChaosExperimentRead.model_validate(row)
    chaos.abort(settings.chaos_state_dir, chaos_runs.key_of(experiment_id))
    return read
