"""Sign in and sign out."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter
from fastapi import Form
from fastapi import Query
from fastapi import Request
from fastapi.responses import RedirectResponse
from fastapi.responses import Response

from controlplane.api import auth_failures
from controlplane.api.deps import get_session_factory
from controlplane.api.deps import get_settings
from controlplane.domain import PermissionDeniedError
from controlplane.domain import UnauthenticatedError
from controlplane.store import ui_sessions
from controlplane.ui.auth import UiViewer
from controlplane.ui.auth import actor
from controlplane.ui.auth import clear_session_cookie
from controlplane.ui.auth import same_origin
from controlplane.ui.auth import session_secret
from controlplane.ui.auth import set_session_cookie
from controlplane.ui.render import page

router = APIRouter(prefix="/ui", include_in_schema=False)


def _safe_next(target: str) -> str:
    """Only a path on this site: never ``//evil.example`` or an absolute URL."""
    if target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/fleet"


@router.get("/sign-in")
def sign_in_form(
    request: Request, next: Annotated[str, Query(max_length=2000)] = "/ui/fleet"
) -> Response:
    return page(request, "sign_in.html", None, next=_safe_next(next), name="", error="")


@router.post("/sign-in")
def sign_in(
    request: Request,
    name: Annotated[str, Form(max_length=64)],
    token: Annotated[str, Form(max_length=512)],
    next: Annotated[str, Form(max_length=2000)] = "/ui/fleet",
) -> Response:
    if not same_origin(request):
        # A cross-site sign-in would put the victim's browser in someone else's session.
        auth_failures.record(request, 403, "ui sign-in from another site")
        raise PermissionDeniedError("sign-in from another site refused")
    settings = get_settings(request)
    ttl = timedelta(seconds=settings.ui.session_ttl_s)
    try:
        with get_session_factory(request)() as session, session.begin():
            _row, secret = ui_sessions.sign_in(session, name=name, token=token, ttl=ttl)
    except UnauthenticatedError as exc:
        auth_failures.record(request, 401, f"ui sign-in as {name!r}: {exc}")
        return page(
            request,
            "sign_in.html",
            None,
            status_code=401,
            next=_safe_next(next),
            name=name,
            error=str(exc),
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_session_cookie(request, response, secret, int(ttl.total_seconds()))
    return response


@router.post("/sign-out")
def sign_out(request: Request, user: UiViewer) -> Response:
    secret = session_secret(request)
    if secret:
        with get_session_factory(request)() as session, session.begin():
            ui_sessions.sign_out(session, secret, actor=actor(user))
    response = RedirectResponse("/ui/sign-in", status_code=303)
    clear_session_cookie(request, response)
    return response
