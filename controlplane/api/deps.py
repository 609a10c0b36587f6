"""Request dependencies: the session, the caller, and the role gates.

Authentication reads in its own short read-only transaction and stamps ``last_used_at``
(at most once a minute per token) in a separate write, so a route's own transaction holds
only the route's changes and a read request never takes SQLite's write lock. ``GET`` and
``HEAD`` routes get a read-only session; every refusal (401, 403) is counted and logged
with a rate limit (:mod:`controlplane.api.auth_failures`). Routes are plain ``def``: FastAPI
runs them in its thread pool, where a synchronous session belongs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends
from fastapi import Request
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.security import HTTPBearer
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from controlplane.api import auth_failures
from controlplane.domain import PermissionDeniedError
from controlplane.domain import Role
from controlplane.domain import UnauthenticatedError
from controlplane.schemas.users import Principal
from controlplane.settings import Settings
from controlplane.store import users
from controlplane.store.base import utcnow
from controlplane.store.database import SessionFactory

log = logging.getLogger(__name__)
_bearer = HTTPBearer(auto_error=False, description="API token from `cplane token create`.")


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session_factory(request: Request) -> SessionFactory:
    factory: SessionFactory = request.app.state.session_factory
    return factory


def get_read_session_factory(request: Request) -> SessionFactory:
    factory: SessionFactory = getattr(
        request.app.state, "read_session_factory", request.app.state.session_factory
    )
    return factory


def get_session(request: Request) -> Iterator[Session]:
    read_only = request.method in ("GET", "HEAD")
    factory = get_read_session_factory(request) if read_only else get_session_factory(request)
    with factory() as session:
        yield session


def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    try:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise UnauthenticatedError("missing bearer token (Authorization: Bearer <token>)")
        now = utcnow()
        with get_read_session_factory(request)() as session, session.begin():
            principal, stale = users.verify(session, credentials.credentials, now=now)
    except UnauthenticatedError as exc:
        auth_failures.record(request, 401, str(exc))
        raise
    if stale and principal.token_id is not None:
        try:
            with get_session_factory(request)() as session, session.begin():
                users.stamp_last_used(session, token_id=principal.token_id, now=now)
        except OperationalError as exc:
            # A last-used marker is not worth failing the request: the next one retries it.
            log.debug("could not stamp token %s as used: %s", principal.token_id, exc)
    return principal


def require(role: Role) -> Callable[[Request, Principal], Principal]:
    def gate(
        request: Request, principal: Annotated[Principal, Depends(get_principal)]
    ) -> Principal:
        if not principal.role.allows(role):
            message = f"role {principal.role.value!r} may not do this; it needs {role.value!r}"
            auth_failures.record(request, 403, f"{principal.name}: {message}")
            raise PermissionDeniedError(message)
        return principal

    gate.__name__ = f"require_{role.value}"
    return gate


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
Viewer = Annotated[Principal, Depends(require(Role.viewer))]
Operator = Annotated[Principal, Depends(require(Role.operator))]
Admin = Annotated[Principal, Depends(require(Role.admin))]


def actor(principal: Principal) -> str:
    return f"user:{principal.name}"
