"""Who is using the UI: a server-side session from a cookie, and the CSRF check.

A page request without a valid session is redirected to the sign-in page (htmx requests get
``HX-Redirect``, so a partial update does not paint the sign-in form into a table cell); a
state-changing request without one is refused (401), and one whose CSRF token or origin does
not match is refused (403) before its form is looked at. The role gates are the API's:
:class:`controlplane.domain.Role` decides, and a refusal is counted like the API's.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from collections.abc import Coroutine
from typing import Annotated
from typing import Any
from urllib.parse import quote
from urllib.parse import urlsplit

from fastapi import Depends
from fastapi import Request
from fastapi.responses import RedirectResponse
from fastapi.responses import Response

from controlplane.api import auth_failures
from controlplane.api.deps import get_read_session_factory
from controlplane.domain import PermissionDeniedError
from controlplane.domain import Role
from controlplane.domain import UnauthenticatedError
from controlplane.schemas.users import Principal
from controlplane.store import ui_sessions

COOKIE = "cp_session"
TLS_COOKIE = "__Host-cp_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class SignInRequired(Exception):
    """Raised by the page dependency; answered with a redirect to the sign-in page."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.target = target


class CsrfRefused(PermissionDeniedError):
    pass


class UiUser:
    """The signed-in principal and the CSRF token its pages carry."""

    def __init__(self, principal: Principal, csrf: str) -> None:
        self.principal = principal
        self.csrf = csrf

    @property
    def name(self) -> str:
        return self.principal.name

    @property
    def role(self) -> Role:
        return self.principal.role

    def can(self, role: str) -> bool:
        return self.principal.role.allows(Role(role))


def cookie_name(request: Request) -> str:
    return TLS_COOKIE if request.url.scheme == "https" else COOKIE


def session_secret(request: Request) -> str | None:
    return request.cookies.get(cookie_name(request))


def set_session_cookie(request: Request, response: Response, secret: str, max_age: int) -> None:
    tls = request.url.scheme == "https"
    response.set_cookie(
        cookie_name(request),
        secret,
        max_age=max_age,
        path="/",
        secure=tls,
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    tls = request.url.scheme == "https"
    response.delete_cookie(
        cookie_name(request), path="/", secure=tls, httponly=True, samesite="lax"
    )


def _target(request: Request) -> str:
    path = request.url.path
    if request.url.query:
        path += "?" + request.url.query
    return path


def sign_in_redirect(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    location = "/ui/sign-in?next=" + quote(exc.target, safe="/")
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


def same_origin(request: Request) -> bool:
    """A browser sends ``Origin`` on every cross-site POST; where it is present it must be
    this host. ``Sec-Fetch-Site: cross-site`` is refused as well."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc == host


async def current_user(request: Request) -> UiUser:
    secret = session_secret(request)
    unsafe = request.method not in SAFE_METHODS
    try:
        if not secret:
            raise UnauthenticatedError("not signed in")
        with get_read_session_factory(request)() as session, session.begin():
            principal = ui_sessions.verify(session, secret)
    except UnauthenticatedError as exc:
        if unsafe:
            auth_failures.record(request, 401, f"ui: {exc}")
            raise
        raise SignInRequired(_target(request)) from None
    user = UiUser(principal, ui_sessions.csrf_token(secret))
    if unsafe:
        await _check_csrf(request, user)
    return user


async def _check_csrf(request: Request, user: UiUser) -> None:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent, user.csrf) or not same_origin(request):
        auth_failures.record(request, 403, f"ui: {user.name}: CSRF check failed")
        raise CsrfRefused("missing or wrong CSRF token, or a cross-site request")


def require_ui(role: Role) -> Callable[[Request, UiUser], Coroutine[Any, Any, UiUser]]:
    async def gate(request: Request, user: Annotated[UiUser, Depends(current_user)]) -> UiUser:
        if not user.role.allows(role):
            message = f"role {user.role.value!r} may not do this; it needs {role.value!r}"
            auth_failures.record(request, 403, f"ui: {user.name}: {message}")
            raise PermissionDeniedError(message)
        return user

    gate.__name__ = f"require_ui_{role.value}"
    return gate


UiViewer = Annotated[UiUser, Depends(require_ui(Role.viewer))]
UiOperator = Annotated[UiUser, Depends(require_ui(Role.operator))]
UiAdmin = Annotated[UiUser, Depends(require_ui(Role.admin))]


def actor(user: UiUser) -> str:
    """The same actor string the API writes, so the audit log reads one way."""
    return f"user:{user.name}"
