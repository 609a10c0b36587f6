"""User administration: admins list users, disable or enable them and change their role.
Every change is audited; disabling a user makes all of its tokens fail at once (401)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Path
from fastapi import Response

from controlplane.api.deps import Admin
from controlplane.api.deps import SessionDep
from controlplane.api.deps import actor
from controlplane.schemas.users import UserRead
from controlplane.schemas.users import UserUpdate
from controlplane.store import users

router = APIRouter(prefix="/api/v1/users", tags=["Users"])

UserName = Annotated[
    str, Path(description="User name.", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
]


@router.get("", response_model=list[UserRead])
def list_users(session: SessionDep, who: Admin) -> list[UserRead]:
    with session.begin():
        return [UserRead.model_validate(row) for row in users.list_users(session)]


@router.patch("/{name}", response_model=UserRead)
def update_user(name: UserName, data: UserUpdate, session: SessionDep, who: Admin) -> UserRead:
    """Change role and/or disabled state; a change that would leave no enabled admin is 409."""
    with session.begin():
        row = users.get_user(session, name)
        if data.role is not None:
            row = users.set_role(session, name=name, role=data.role, actor=actor(who))
        if data.disabled is not None:
            row = users.set_disabled(session, name=name, disabled=data.disabled, actor=actor(who))
        return UserRead.model_validate(row)


@router.delete("/{name}", status_code=204)
def delete_user(name: UserName, session: SessionDep, who: Admin) -> Response:
    """Refused (409, naming them) while the user is on an on-call schedule or policy."""
    with session.begin():
        users.delete_user(session, name=name, actor=actor(who))
    return Response(status_code=204)
