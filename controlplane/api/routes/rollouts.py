"""Changes to live engines. Every one is a guarded rollout: the request validates it and
records it (the route's transaction), then the guard service takes it in the background and
the caller follows it at ``GET /api/v1/rollouts/{id}``."""

from __future__ import annotations

from typing import Annotated
from typing import Any

from fastapi import APIRouter
from fastapi import Query
from fastapi import Request
from fastapi.responses import JSONResponse

from controlplane.api.deps import Operator
from controlplane.api.deps import SessionDep
from controlplane.api.deps import SettingsDep
from controlplane.api.deps import Viewer
from controlplane.api.deps import actor
from controlplane.api.params import EngineRef
from controlplane.api.params import RowId
from controlplane.domain import ConflictError
from controlplane.domain import RolloutState
from controlplane.guard import GuardService
from controlplane.guard import propose
from controlplane.schemas.rollouts import ApplyRequest
from controlplane.schemas.rollouts import RolloutPlan
from controlplane.schemas.rollouts import RolloutRead
from controlplane.store import configs
from controlplane.store import engines
from controlplane.store import rollouts

router = APIRouter(prefix="/api/v1", tags=["Rollouts"])


def _guard(request: Request) -> GuardService:
    service: GuardService | None = request.app.state.guard
    if service is None:
        raise ConflictError("the guard is not running in this process (starting or stopping)")
    return service


def _start(
    request: Request,
    session: Any,
    *,
    engine: str,
    changes: dict[str, Any],
    reason: str,
    who: str,
    bake_s: float,
    dry_run: bool,
    canary: str | None = None,
) -> JSONResponse:
    plan = start_change(
        request,
        session,
        engine=engine,
        changes=changes,
        reason=reason,
        who=who,
        bake_s=bake_s,
        dry_run=dry_run,
        canary=canary,
    )
    status = 200 if dry_run else 202
    return JSONResponse(plan.model_dump(mode="json"), status_code=status)


def start_change(
    request: Request,
    session: Any,
    *,
    engine: str,
    changes: dict[str, Any],
    reason: str,
    who: str,
    bake_s: float,
    dry_run: bool,
    canary: str | None = None,
) -> RolloutPlan:
    """Validate a change, record its rollout and hand it to the guard (the API's and the
    UI's one way to change an engine)."""
    with session.begin():
        row = engines.get_engine(session, engine)
        adapter = request.app.state.adapter_factory(engines.engine_target(row))
        try:
            plan = propose(
                session,
                engine=row,
                adapter=adapter,
                changes=changes,
                reason=reason,
                actor=who,
                bake_s=bake_s,
                dry_run=dry_run,
                canary=canary,
            )
        finally:
            adapter.close()
    if plan.rollout_id is not None and not plan.awaiting_approval:
        _guard(request).submit(plan.rollout_id)
    return plan


@router.post(
    "/engines/{engine}/rollouts",
    response_model=RolloutPlan,
    status_code=202,
    responses={200: {"description": "dry run: the plan, nothing changed"}},
)
def apply_change(
    engine: EngineRef,
    body: ApplyRequest,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    who: Operator,
) -> JSONResponse:
    """Validate a change and start its guarded rollout (or only show the plan)."""
    return _start(
        request,
        session,
        engine=engine,
        changes=dict(body.changes),
        reason=body.reason,
        who=actor(who),
        bake_s=body.bake_s or settings.guard.bake_s,
        dry_run=body.dry_run,
        canary=body.canary,
    )


@router.get("/rollouts", response_model=list[RolloutRead])
def list_rollouts(
    session: SessionDep,
    who: Viewer,
    engine: Annotated[str | None, Query(max_length=100)] = None,
    state: RolloutState | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[RolloutRead]:
    with session.begin():
        engine_id = engines.get_engine(session, engine).id if engine else None
        rows = rollouts.list_rollouts(session, engine_id=engine_id, state=state, limit=limit)
        return [RolloutRead.model_validate(r) for r in rows]


@router.get("/rollouts/{rollout_id}", response_model=RolloutRead)
def get_rollout(rollout_id: RowId, session: SessionDep, who: Viewer) -> RolloutRead:
    """One rollout with its evidence: baseline, every decision's inputs, the verdict."""
    with session.begin():
        return RolloutRead.model_validate(rollouts.get_rollout(session, rollout_id))


@router.post("/rollouts/{rollout_id}/approve", response_model=RolloutRead, status_code=202)
def approve_rollout(
    rollout_id: RowId, request: Request, session: SessionDep, who: Operator
) -> RolloutRead:
    with session.begin():
        row = rollouts.approve(
            session, rollouts.get_rollout(session, rollout_id), actor=actor(who)
        )
        read = RolloutRead.model_validate(row)
    _guard(request).submit(rollout_id)
    return read


@router.post("/rollouts/{rollout_id}/rollback", status_code=202)
def rollback_rollout(
    rollout_id: RowId,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    who: Operator,
) -> JSONResponse:
    """In flight: stop the bake and restore the last known good config. Committed: start a
    new guarded rollout back to the config it replaced."""
    with session.begin():
        row = rollouts.get_rollout(session, rollout_id)
        if RolloutState(row.state).terminal:
            if row.state != RolloutState.committed.value or row.from_config_id is None:
                raise ConflictError(f"rollout {rollout_id} is {row.state}: nothing to undo")
            previous = configs.get_config(session, row.from_config_id).config
            engine = engines.get_engine(session, row.engine_id).name
        else:
            rollouts.request_rollback(session, row, actor=actor(who))
            engine = ""
    if not engine:
        _guard(request).request_rollback(rollout_id)
        return JSONResponse({"rollout_id": rollout_id, "rollback": "requested"}, 202)
    return _start(
        request,
        session,
        engine=engine,
        changes=dict(previous),
        reason="rollback",
        who=actor(who),
        bake_s=settings.guard.bake_s,
        dry_run=False,
    )
