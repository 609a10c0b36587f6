"""Administration: users and roles, API tokens, and the audit log with filters. Admins only,
like ``/api/v1/users``; every change goes through the same store functions as the API and
the CLI, and is audited."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from typing import Any

from fastapi import APIRouter
from fastapi import Path
from fastapi import Query
from fastapi import Request
from fastapi.responses import RedirectResponse
from fastapi.responses import Response

from controlplane.api.deps import SessionDep
from controlplane.api.deps import get_settings
from controlplane.api.params import RowId
from controlplane.api.routes import users as users_api
from controlplane.domain import Role
from controlplane.domain.ids import MAX_AUDIT_ID
from controlplane.schemas.audit import AuditEventRead
from controlplane.schemas.users import TokenRead
from controlplane.schemas.users import UserRead
from controlplane.schemas.users import UserUpdate
from controlplane.store import audit
from controlplane.store import ui_sessions
from controlplane.store import users
from controlplane.ui.auth import UiAdmin
from controlplane.ui.auth import UiUser
from controlplane.ui.auth import actor
from controlplane.ui.forms import FormErrors
from controlplane.ui.forms import act
from controlplane.ui.forms import parse
from controlplane.ui.render import page

router = APIRouter(prefix="/ui", include_in_schema=False)
UserName = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")]


def _render(
    request: Request,
    session: SessionDep,
    user: UiUser,
    *,
    filters: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    created: tuple[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    filters = filters or {}
    with session.begin():
        people = [UserRead.model_validate(u) for u in users.list_users(session)]
        tokens = [TokenRead.model_validate(t) for t in users.list_tokens(session)]
        rows = audit.list_events(
            session,
            target_type=filters.get("target_type") or None,
            actor=filters.get("actor") or None,
            action=filters.get("action") or None,
            before_id=filters.get("before_id"),
            limit=100,
        )
        events = [AuditEventRead.model_validate(e) for e in rows]
    names = {u.id: u.name for u in people}
    return page(
        request,
        "admin.html",
        user,
        section="admin",
        status_code=status_code,
        people=people,
        tokens=tokens,
        names=names,
        events=events,
        filters=filters,
        roles=[r.value for r in Role],
        errors=errors or {},
        form=form or {},
        created=created,
    )


@router.get("/admin")
def admin_page(
    request: Request,
    session: SessionDep,
    user: UiAdmin,
    target_type: Annotated[str, Query(max_length=32)] = "",
    actor_: Annotated[str, Query(alias="actor", max_length=128)] = "",
    action: Annotated[str, Query(max_length=64)] = "",
    before_id: Annotated[int | None, Query(ge=1, le=MAX_AUDIT_ID)] = None,
) -> Response:
    filters = {
        "target_type": target_type,
        "actor": actor_,
        "action": action,
        "before_id": before_id,
    }
    return _render(request, session, user, filters=filters)


@router.post("/admin/users/{name}")
async def update_user(
    request: Request, name: UserName, session: SessionDep, user: UiAdmin
) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    data: dict[str, Any] = {}
    if form.get("role"):
        data["role"] = form["role"]
    if form.get("disabled") in {"true", "false"}:
        data["disabled"] = form["disabled"] == "true"
    try:
        body = parse(UserUpdate, data)
        act(
            lambda: users_api.update_user(
                name=name, data=body, session=session, who=user.principal
            ),
            default_field=f"user.{name}",
        )
    except FormErrors as exc:
        return _render(request, session, user, errors=exc.errors, status_code=409)
    return RedirectResponse("/ui/admin#users", status_code=303)


@router.post("/admin/users/{name}/sign-out")
def sign_out_everywhere(
    request: Request, name: UserName, session: SessionDep, user: UiAdmin
) -> Response:
    with session.begin():
        row = users.get_user(session, name)
        ui_sessions.revoke_user_sessions(session, user_id=row.id, actor=actor(user))
    return RedirectResponse("/ui/admin#users", status_code=303)


@router.post("/admin/users")
async def create_user(request: Request, session: SessionDep, user: UiAdmin) -> Response:
    """A user and a first token, the secret shown once (as ``cplane user add`` does)."""
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    name = form.get("name", "").strip()
    role_text = form.get("role", "viewer")
    days = get_settings(request).api.token_ttl_days
    try:
        if role_text not in {r.value for r in Role}:
            raise FormErrors({"role": f"role must be one of {', '.join(r.value for r in Role)}"})
        role = Role(role_text)

        def create() -> tuple[str, str]:
            with session.begin():
                row = users.create_user(session, name=name, role=role, actor=actor(user))
                _token, secret = users.create_token(
                    session, user=row, name="ui", ttl=timedelta(days=days), actor=actor(user)
                )
            return name, secret

        created = act(create, default_field="name")
    except FormErrors as exc:
        return _render(request, session, user, errors=exc.errors, form=form, status_code=422)
    return _render(request, session, user, created=created)


@router.post("/admin/tokens/{token_id}/revoke")
def revoke_token(
    request: Request, token_id: RowId, session: SessionDep, user: UiAdmin
) -> Response:
    try:

        def revoke() -> None:
            with session.begin():
                users.revoke_token(session, token_id=token_id, actor=actor(user))

        act(revoke)
    except FormErrors as exc:
        return _render(request, session, user, errors=exc.errors, status_code=404)
    return RedirectResponse("/ui/admin#tokens", status_code=303)
