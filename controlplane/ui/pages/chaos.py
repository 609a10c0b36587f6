"""Chaos experiments and their outcome (failed requests, seconds in SLO violation, the
guard's reaction); admins start one with a form. Like the API, the page is for admins."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi import Request
from fastapi.responses import RedirectResponse
from fastapi.responses import Response

from controlplane.api.deps import SessionDep
from controlplane.api.deps import get_settings
from controlplane.api.routes import chaos as chaos_api
from controlplane.schemas.chaos import ChaosRunCreate
from controlplane.ui.auth import UiAdmin
from controlplane.ui.auth import UiUser
from controlplane.ui.forms import FormErrors
from controlplane.ui.forms import act
from controlplane.ui.forms import parse
from controlplane.ui.render import page

router = APIRouter(prefix="/ui", include_in_schema=False)


def _render(
    request: Request,
    session: SessionDep,
    user: UiUser,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    experiments = chaos_api.list_experiments(
        session=session, who=user.principal, state=None, limit=100
    )
    return page(
        request,
        "chaos.html",
        user,
        section="chaos",
        status_code=status_code,
        experiments=experiments,
        errors=errors or {},
        form=form or {},
    )


@router.get("/chaos")
def chaos_list(request: Request, session: SessionDep, user: UiAdmin) -> Response:
    return _render(request, session, user)


@router.post("/chaos")
async def start_experiment(request: Request, session: SessionDep, user: UiAdmin) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    data: dict[str, Any] = {
        "target": form.get("target", ""),
        "fault": form.get("fault", ""),
        "duration_s": form.get("duration_s", ""),
        "engine": form.get("engine", "").strip() or None,
        "expected": form.get("expected", "any"),
        "hypothesis": [s.strip() for s in form.get("hypothesis", "").split(";") if s.strip()],
    }
    try:
        body = parse(ChaosRunCreate, data)
        settings = get_settings(request)
        act(
            lambda: chaos_api.run_experiment(
                body=body, request=request, settings=settings, who=user.principal
            ),
            default_field="target",
        )
    except FormErrors as exc:
        return _render(request, session, user, errors=exc.errors, form=form, status_code=422)
    return RedirectResponse("/ui/chaos", status_code=303)
