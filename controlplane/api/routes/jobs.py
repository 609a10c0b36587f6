"""System jobs: list (with the leader, last and next run), edit (operator, audited), history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Path
from fastapi import Query
from fastapi import Request

from controlplane.api.deps import Operator
from controlplane.api.deps import SessionDep
from controlplane.api.deps import SettingsDep
from controlplane.api.deps import Viewer
from controlplane.api.deps import actor
from controlplane.scheduler import change_job
from controlplane.scheduler import job_list
from controlplane.scheduler import job_runs
from controlplane.schemas.jobs import JobList
from controlplane.schemas.jobs import JobRead
from controlplane.schemas.jobs import JobRunRead
from controlplane.schemas.jobs import JobUpdate
from controlplane.store.base import utcnow

router = APIRouter(prefix="/api/v1/jobs", tags=["Jobs"])
JobName = Annotated[str, Path(max_length=64, description="System job name, e.g. `retention`.")]


@router.get("", response_model=JobList)
def list_jobs(session: SessionDep, who: Viewer) -> JobList:
    with session.begin():
        return job_list(session, now=utcnow())


@router.patch("/{name}", response_model=JobRead)
def update_job(
    name: JobName,
    body: JobUpdate,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    who: Operator,
) -> JobRead:
    """Change a job's interval or switch it on or off; the leader picks it up within
    `CP_SCHEDULER__REFRESH_S` (at once when this process leads)."""
    with session.begin():
        read = change_job(
            session, name, body, actor=actor(who), policy=settings.scheduler, now=utcnow()
        )
    service = request.app.state.scheduler
    if service is not None:
        service.refresh_soon()
    return read


@router.get("/{name}/runs", response_model=list[JobRunRead])
def list_runs(
    name: JobName,
    session: SessionDep,
    who: Viewer,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[JobRunRead]:
    """Recorded runs, newest first (idle firings of frequent jobs are counted on /metrics)."""
    with session.begin():
        return job_runs(session, name, limit=limit)
