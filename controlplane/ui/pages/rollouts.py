"""Rollouts: the list, and one rollout with its state timeline (from the audit log, where
every move is recorded), from / to config, the evidence behind the verdict, the last known
good it went back to, and approve / roll back where the caller's role allows."""

from __future__ import annotations

import json
from typing import Annotated
from typing import Any

from fastapi import APIRouter
from fastapi import Query
from fastapi import Request
from fastapi.responses import JSONResponse
from fastapi.responses import RedirectResponse
from fastapi.responses import Response

from controlplane.api.deps import SessionDep
from controlplane.api.params import RowId
from controlplane.api.routes import rollouts as rollouts_api
from controlplane.domain import RolloutState
from controlplane.schemas.audit import AuditEventRead
from controlplane.schemas.engines import EngineConfigRead
from controlplane.schemas.engines import EngineRead
from controlplane.schemas.rollouts import RolloutRead
from controlplane.store import audit
from controlplane.store import configs
from controlplane.store import engines
from controlplane.store import fleet
from controlplane.store import rollouts
from controlplane.ui.auth import UiOperator
from controlplane.ui.auth import UiUser
from controlplane.ui.auth import UiViewer
from controlplane.ui.forms import FormErrors
from controlplane.ui.forms import act
from controlplane.ui.render import page

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("/rollouts")
def rollout_list(
    request: Request,
    session: SessionDep,
    user: UiViewer,
    state: RolloutState | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    with session.begin():
        rows = [
            RolloutRead.model_validate(r)
            for r in rollouts.list_rollouts(session, state=state, limit=limit)
        ]
        names = fleet.engine_names(session)
    return page(
        request,
        "rollouts.html",
        user,
        section="rollouts",
        rows=rows,
        names=names,
        states=[s.value for s in RolloutState],
        state=state.value if state else "",
    )


def _detail(session: SessionDep, rollout_id: int) -> dict[str, Any]:
    row = RolloutRead.model_validate(rollouts.get_rollout(session, rollout_id))
    engine = EngineRead.from_row(engines.get_engine(session, row.engine_id))

    def config(config_id: int | None) -> EngineConfigRead | None:
        if config_id is None:
            return None
        return EngineConfigRead.model_validate(configs.get_config(session, config_id))

    lkg = configs.last_known_good(session, engine.id)
    events = audit.list_events(
        session, target_type="rollout", target_id=str(rollout_id), limit=200
    )
    timeline = [AuditEventRead.model_validate(e) for e in reversed(events)]
    evidence = row.evidence or {}
    decisions = [d for d in evidence.get("decisions", []) if isinstance(d, dict)]
    breach = next((d for d in decisions if d.get("verdict") == "breach"), None)
    verdict = evidence.get("verdict") or {}
    # The quality probe's evidence (controlplane.guard.quality.verdict_json), where it ran.
    quality = verdict.get("quality") if isinstance(verdict, dict) else None
    return {
        "rollout": row,
        "engine": engine,
        "from_cfg": config(row.from_config_id),
        "to_cfg": config(row.to_config_id),
        "lkg": None if lkg is None else EngineConfigRead.model_validate(lkg),
        "timeline": timeline,
        "evidence": evidence,
        "verdict": verdict,
        "quality": quality if isinstance(quality, dict) else None,
        "decisions": decisions,
        "breach": breach,
        "terminal": RolloutState(row.state).terminal,
    }


def _render(
    request: Request,
    session: SessionDep,
    user: UiUser,
    rollout_id: int,
    template: str = "rollout.html",
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    with session.begin():
        ctx = _detail(session, rollout_id)
    return page(
        request,
        template,
        user,
        status_code=status_code,
        section="rollouts",
        errors=errors or {},
        **ctx,
    )


@router.get("/rollouts/{rollout_id}")
def rollout_page(
    request: Request, rollout_id: RowId, session: SessionDep, user: UiViewer
) -> Response:
    return _render(request, session, user, rollout_id)


@router.get("/rollouts/{rollout_id}/live")
def rollout_live(
    request: Request, rollout_id: RowId, session: SessionDep, user: UiViewer
) -> Response:
    """The part of the page that changes, polled by htmx until the rollout is terminal
    (the fragment then stops the polling by answering without the trigger)."""
    return _render(request, session, user, rollout_id, "fragments/rollout_live.html")


@router.get("/rollouts/{rollout_id}/evidence.json")
def rollout_evidence(rollout_id: RowId, session: SessionDep, user: UiViewer) -> JSONResponse:
    """The bake's test statistic against its threshold per SLO, for the evidence chart."""
    with session.begin():
        evidence = rollouts.get_rollout(session, rollout_id).evidence or {}
    series: dict[str, list[tuple[float, float]]] = {}
    for d in evidence.get("decisions", []):
        if not isinstance(d, dict) or d.get("t_s") is None:
            continue
        slo = str(d.get("slo", ""))
        for key in ("log_ratio", "threshold"):
            if d.get(key) is not None:
                series.setdefault(f"{slo} {key}", []).append((float(d["t_s"]), float(d[key])))
    body = {"series": [{"labels": {"name": k}, "points": v} for k, v in sorted(series.items())]}
    return JSONResponse(body)


@router.post("/rollouts/{rollout_id}/approve")
def approve(
    request: Request, rollout_id: RowId, session: SessionDep, user: UiOperator
) -> Response:
    try:
        act(
            lambda: rollouts_api.approve_rollout(
                rollout_id=rollout_id, request=request, session=session, who=user.principal
            )
        )
    except FormErrors as exc:
        return _render(request, session, user, rollout_id, errors=exc.errors, status_code=409)
    return RedirectResponse(f"/ui/rollouts/{rollout_id}", status_code=303)


@router.post("/rollouts/{rollout_id}/rollback")
def rollback(
    request: Request, rollout_id: RowId, session: SessionDep, user: UiOperator
) -> Response:
    settings = request.app.state.settings
    try:
        response = act(
            lambda: rollouts_api.rollback_rollout(
                rollout_id=rollout_id,
                request=request,
                session=session,
                settings=settings,
                who=user.principal,
            )
        )
    except FormErrors as exc:
        return _render(request, session, user, rollout_id, errors=exc.errors, status_code=409)
    started = _started_rollout(response)
    return RedirectResponse(f"/ui/rollouts/{started or rollout_id}", status_code=303)


def _started_rollout(response: JSONResponse) -> int | None:
    """A committed rollout is undone by a new one: follow it."""
    body = json.loads(bytes(response.body))
    value = body.get("rollout_id")
    return int(value) if isinstance(value, int) and body.get("rollback") is None else None
