"""Tuning schedules over HTTP: create (validated in full before anything is written), list,
inspect, pause, resume, remove, fire now, and the history of firings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Query
from fastapi import Request
from fastapi import Response
from pydantic import BaseModel

from controlplane.api.deps import Operator
from controlplane.api.deps import SessionDep
from controlplane.api.deps import Viewer
from controlplane.api.deps import actor
from controlplane.api.params import ScheduleRef
from controlplane.domain import ConflictError
from controlplane.scheduler.tuning_schedules import create_schedule
from controlplane.scheduler.tuning_schedules import fire
from controlplane.scheduler.tuning_schedules import next_fire
from controlplane.schemas.schedules import ScheduleCreate
from controlplane.schemas.schedules import ScheduleRead
from controlplane.schemas.schedules import ScheduleRunRead
from controlplane.settings import Settings
from controlplane.store import audit
from controlplane.store import engines
from controlplane.store import jobs
from controlplane.store import schedules
from controlplane.store.base import utcnow
from controlplane.store.models import ScheduleRow
from tuner import TuningService

router = APIRouter(prefix="/api/v1", tags=["Schedules"])


class FiringRead(BaseModel):
    """What a run-now did: ``started``, ``skipped`` (with the reason code), or ``failed``."""

    schedule_id: int
    state: str
    message: str
    job_run_id: int | None
    reason: str | None
    tuning_run_id: int | None


def _read(row: ScheduleRow) -> ScheduleRead:
    read = ScheduleRead.model_validate(row)
    return read.model_copy(update={"next_fire": next_fire(row)})


@router.post("/schedules", response_model=ScheduleRead, status_code=201)
def add_schedule(
    body: ScheduleCreate, request: Request, session: SessionDep, who: Operator
) -> ScheduleRead:
    """Every check a firing needs runs first: nothing is recorded for a refused schedule."""
    settings: Settings = request.app.state.settings
    with session.begin():
        row = create_schedule(
            session,
            body,
            settings=settings,
            adapter_factory=request.app.state.adapter_factory,
            actor=actor(who),
        )
        return _read(row)


@router.get("/schedules", response_model=list[ScheduleRead])
def list_schedules(
    session: SessionDep,
    who: Viewer,
    engine: Annotated[str | None, Query(max_length=100)] = None,
) -> list[ScheduleRead]:
    with session.begin():
        engine_id = engines.get_engine(session, engine).id if engine else None
        return [_read(r) for r in schedules.list_schedules(session, engine_id=engine_id)]


@router.get("/schedules/{schedule}", response_model=ScheduleRead)
def get_schedule(schedule: ScheduleRef, session: SessionDep, who: Viewer) -> ScheduleRead:
    with session.begin():
        return _read(schedules.get_schedule(session, schedule))


@router.post("/schedules/{schedule}/pause", response_model=ScheduleRead)
def pause_schedule(schedule: ScheduleRef, session: SessionDep, who: Operator) -> ScheduleRead:
    with session.begin():
        row = schedules.get_schedule(session, schedule)
        return _read(schedules.set_paused(session, row, True, actor=actor(who)))


@router.post("/schedules/{schedule}/resume", response_model=ScheduleRead)
def resume_schedule(schedule: ScheduleRef, session: SessionDep, who: Operator) -> ScheduleRead:
    with session.begin():
        row = schedules.get_schedule(session, schedule)
        return _read(schedules.set_paused(session, row, False, actor=actor(who)))


@router.delete("/schedules/{schedule}", status_code=204)
def remove_schedule(schedule: ScheduleRef, session: SessionDep, who: Operator) -> Response:
    with session.begin():
        schedules.delete_schedule(
            session, schedules.get_schedule(session, schedule), actor=actor(who)
        )
    return Response(status_code=204)


@router.post("/schedules/{schedule}/run-now", response_model=FiringRead, status_code=202)
def run_schedule_now(
    schedule: ScheduleRef,
    request: Request,
    session: SessionDep,
    who: Operator,
    force: Annotated[
        bool, Query(description="Ignore the maintenance window and the traffic floor.")
    ] = False,
) -> FiringRead:
    """Fire now, in this process: the skip rules apply (``force`` lifts the window and the
    traffic floor); a started tuning run runs in this server's tuning service."""
    service: TuningService | None = request.app.state.tuning
    if service is None:
        raise ConflictError("the tuning service is not running in this process")
    with session.begin():
        row = schedules.get_schedule(session, schedule)
        schedule_id = row.id
        audit.record(
            session,
            actor=actor(who),
            action="schedule.run_now",
            target_type="schedule",
            target_id=schedule_id,
            detail={"force": force},
        )
    firing = fire(
        request.app.state.session_factory,
        schedule_id,
        utcnow(),
        settings=request.app.state.settings,
        adapter_factory=request.app.state.adapter_factory,
        submit=service.submit,
        fence=None,
        force=force,
    )
    return FiringRead(
        schedule_id=firing.schedule_id,
        state=firing.state,
        message=firing.message,
        job_run_id=firing.job_run_id,
        reason=firing.reason,
        tuning_run_id=firing.tuning_run_id,
    )


@router.get("/schedules/{schedule}/runs", response_model=list[ScheduleRunRead])
def schedule_history(
    schedule: ScheduleRef,
    session: SessionDep,
    who: Viewer,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[ScheduleRunRead]:
    """Newest firing first: started, skipped (with the reason), done or failed."""
    with session.begin():
        row = schedules.get_schedule(session, schedule)
        runs = jobs.list_runs(session, job=schedules.job_name(row.id), limit=limit)
        return [ScheduleRunRead.model_validate(r) for r in runs]
