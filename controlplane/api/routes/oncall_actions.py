"""The one-click acknowledge / resolve links in messages. Public (no API token): the link's
token is the credential, checked here (signature, expiry, action), and the action is audited
as the person the link was sent to.

``GET`` shows a page with one button and changes nothing, because mail scanners and chat
unfurlers fetch links on their own; the button's ``POST`` does the action.
"""

from __future__ import annotations

from html import escape
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path
from fastapi import Request
from fastapi.responses import HTMLResponse

from controlplane.api.deps import SessionDep
from controlplane.api.routes.incidents import observe_ack
from controlplane.domain import UnauthenticatedError
from controlplane.domain.incidents import IncidentState
from controlplane.domain.incidents import NotifyAction
from controlplane.oncall.tokens import verify_action_token
from controlplane.store import incidents
from controlplane.store.base import utcnow
from controlplane.store.database import secret_box
from controlplane.store.models import UserRow

router = APIRouter(prefix="/api/v1/oncall/actions", tags=["On-call"])

# Bounded, but not patterned: whatever is not a token we issued is refused by the token
# check itself, with the same 401 a missing credential gets everywhere else.
Token = Annotated[str, Path(description="The link's token.", min_length=1, max_length=600)]
_VERB = {NotifyAction.acknowledge: "Acknowledge", NotifyAction.resolve: "Resolve"}


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status)


@router.get("/{token}", response_class=HTMLResponse)
def confirm(token: Token, request: Request, session: SessionDep) -> HTMLResponse:
    claim = verify_action_token(secret_box(session.get_bind()), token, now=utcnow())
    with session.begin():
        incident = incidents.get_incident(session, claim.incident_id)
    verb = _VERB[claim.action]
    return _page(
        f"{verb} incident #{incident.id}?",
        f"<p>{escape(incident.title)}</p><p>State: {incident.state.value}</p>"
        f"<form method='post'><button type='submit'>{verb}</button></form>",
    )


@router.post("/{token}", response_class=HTMLResponse)
def act(token: Token, request: Request, session: SessionDep) -> HTMLResponse:
    claim = verify_action_token(secret_box(session.get_bind()), token, now=utcnow())
    with session.begin():
        user = session.get(UserRow, claim.user_id)
        if user is None or user.disabled:
            raise UnauthenticatedError("the person this link was sent to can no longer act")
        who = f"user:{user.name}"
        before = incidents.get_incident(session, claim.incident_id).state
        if claim.action is NotifyAction.acknowledge:
            done = incidents.acknowledge(session, claim.incident_id, actor=who, now=utcnow())
        else:
            done = incidents.resolve(session, claim.incident_id, actor=who, now=utcnow())
    if claim.action is NotifyAction.acknowledge and before is not IncidentState.acknowledged:
        observe_ack(request, done)
    return _page(
        f"Incident #{done.id} {done.state.value}",
        f"<p>{escape(done.title)}</p><p>by {user.name}</p>",
    )
