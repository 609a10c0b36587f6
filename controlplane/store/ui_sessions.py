"""Browser sessions of the web UI, one row each, opened with a user name and an API token.

The cookie holds a 256-bit random secret; the row holds its SHA-256, as for API tokens. The
CSRF token is derived from the secret (a keyed hash), so it needs no column and is worthless
without the cookie. A session is valid while it is unexpired, unrevoked, its user enabled
and the token it was opened with still valid: revoking that token signs the browser out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from controlplane.domain import Role
from controlplane.domain import UnauthenticatedError
from controlplane.schemas.users import Principal
from controlplane.store import audit
from controlplane.store import users
from controlplane.store.base import utcnow
from controlplane.store.models import ApiTokenRow
from controlplane.store.models import UiSessionRow
from controlplane.store.models import UserRow

_SIGN_IN_FAILED = "unknown user or invalid token"


def csrf_token(secret: str) -> str:
    return hmac.new(secret.encode(), b"csrf", hashlib.sha256).hexdigest()


def sign_in(
    session: Session, *, name: str, token: str, ttl: timedelta, now: datetime | None = None
) -> tuple[UiSessionRow, str]:
    """Open a session for ``name`` if ``token`` is one of that user's valid tokens.

    Returns the row and the cookie secret. Every failure is the same message, so a caller
    cannot tell a wrong user from a wrong token.
    """
    now = now or utcnow()
    try:
        principal, _stale = users.verify(session, token, now=now)
    except UnauthenticatedError:
        raise UnauthenticatedError(_SIGN_IN_FAILED) from None
    if principal.name != name or principal.token_id is None:
        raise UnauthenticatedError(_SIGN_IN_FAILED)
    secret = secrets.token_urlsafe(32)
    row = UiSessionRow(
        secret_hash=users.hash_token(secret),
        user_id=principal.user_id,
        token_id=principal.token_id,
        created=now,
        expires_at=now + ttl,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=f"user:{name}",
        action="ui.sign_in",
        target_type="ui_session",
        target_id=row.id,
        detail={"token_id": principal.token_id},
    )
    return row, secret


def verify(session: Session, secret: str, *, now: datetime | None = None) -> Principal:
    """The principal behind a cookie secret (read-only)."""
    now = now or utcnow()
    found = session.execute(
        select(UiSessionRow, UserRow, ApiTokenRow)
        .join(UserRow, UserRow.id == UiSessionRow.user_id)
        .join(ApiTokenRow, ApiTokenRow.id == UiSessionRow.token_id)
        .where(UiSessionRow.secret_hash == users.hash_token(secret))
    ).one_or_none()
    if found is None:
        raise UnauthenticatedError("not signed in")
    row, user, token = found
    if (
        row.revoked_at is not None
        or row.expires_at <= now
        or user.disabled
        or token.revoked_at is not None
        or (token.expires_at is not None and token.expires_at <= now)
    ):
        raise UnauthenticatedError("session ended; sign in again")
    return Principal(user_id=user.id, name=user.name, role=Role(user.role), token_id=token.id)


def sign_out(session: Session, secret: str, *, actor: str) -> bool:
    """Revoke the session of this secret; False when there was none to revoke."""
    row = session.scalars(
        select(UiSessionRow).where(
            UiSessionRow.secret_hash == users.hash_token(secret),
            UiSessionRow.revoked_at.is_(None),
        )
    ).one_or_none()
    if row is None:
        return False
    row.revoked_at = utcnow()
    session.flush()
    audit.record(
        session, actor=actor, action="ui.sign_out", target_type="ui_session", target_id=row.id
    )
    return True


def revoke_user_sessions(session: Session, *, user_id: int, actor: str) -> int:
    """Sign a user out everywhere."""
    result = session.execute(
        update(UiSessionRow)
        .where(UiSessionRow.user_id == user_id, UiSessionRow.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        audit.record(
            session,
            actor=actor,
            action="ui.sign_out_everywhere",
            target_type="user",
            target_id=user_id,
            detail={"sessions": count},
        )
    return count


def prune(session: Session, *, before: datetime) -> int:
    """Delete sessions that expired or were revoked before ``before`` (the retention job)."""
    result = session.execute(
        delete(UiSessionRow).where(
            or_(UiSessionRow.expires_at < before, UiSessionRow.revoked_at < before)
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
