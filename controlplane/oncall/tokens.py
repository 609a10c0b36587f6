"""One-click acknowledge / resolve links: a token that names the incident, the action and
the person it was sent to, with an expiry; encrypted and authenticated with the store's
Fernet keys (so it can be neither read nor forged, and key rotation applies to it too).

The route serving it needs no API token: the link itself is the credential, limited to one
action on one incident for a short time, and the action is audited as the person the link
was sent to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime

from controlplane.domain import SecretKeyError
from controlplane.domain import UnauthenticatedError
from controlplane.domain.incidents import NotifyAction
from controlplane.store.secrets import SecretBox

ACTIONS = (NotifyAction.acknowledge, NotifyAction.resolve)


@dataclass(frozen=True, slots=True)
class ActionClaim:
    incident_id: int
    action: NotifyAction
    user_id: int
    expires_at: datetime


def issue_action_token(
    box: SecretBox, *, incident_id: int, action: NotifyAction, user_id: int, expires_at: datetime
) -> str:
    if action not in ACTIONS:
        raise ValueError(f"no link for {action.value}")
    body = {"i": incident_id, "a": action.value, "u": user_id, "e": int(expires_at.timestamp())}
    return box.encrypt(json.dumps(body, separators=(",", ":")))


def verify_action_token(box: SecretBox, token: str, *, now: datetime) -> ActionClaim:
    """Raises UnauthenticatedError for a token that is forged, damaged or expired."""
    try:
        body = json.loads(box.decrypt(token))
        claim = ActionClaim(
            incident_id=int(body["i"]),
            action=NotifyAction(body["a"]),
            user_id=int(body["u"]),
            expires_at=datetime.fromtimestamp(int(body["e"]), UTC),
        )
    except (SecretKeyError, ValueError, KeyError, TypeError) as exc:
        raise UnauthenticatedError("this link is not valid") from exc
    if claim.action not in ACTIONS:
        raise UnauthenticatedError("this link is not valid")
    if claim.expires_at <= now:
        raise UnauthenticatedError("this link has expired; use the CLI or the UI")
    return claim
