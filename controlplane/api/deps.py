"""Request dependencies: the session, the caller, and the role gates.

Authentication runs in its own short unit of work (it may stamp ``last_used_at``), so a
route's own transaction holds only the route's changes. Routes are plain ``def``: FastAPI
runs them in its thread pool, where a synchronous session belongs.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends
from fastapi import Request
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.security import HTTPBearer
from sqlalchemy.orm import Session

from controlplane.domain import PermissionDeniedError
from controlplane.domain import Role
from controlplane.domain import UnauthenticatedError
from controlplane.schemas.users import Principal
from controlplane.settings import Settings
from controlplane.store import users
from controlplane.store.database import SessionFactory

_bearer = HTTPBearer(auto_error=False, description="API token from `cplane token create`.")


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session_factory(request: Request) -> SessionFactory:
    factory: SessionFactory = request.app.state.session_factory
    return factory


def get_session(request: Request) -> Iterator[Session]:
    with get_session_factory(request)() as session:
        yield session


def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise UnauthenticatedError("missing bearer token (Authorization: Bearer <token>)")
    factory = get_session_factory(request)
    with factory() as session, session.begin():
        return users.authenticate(session, credentials.credentials)


def require(role: Role) -> Callable[[Principal], Principal]:
    def gate(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not principal.role.allows(role):
            raise PermissionDeniedError(
                f"role {principal.role.value!r} may not do this; it needs {role.value!r}"
            )
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
