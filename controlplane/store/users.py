"""Users and API tokens.

A token is 256 random bits shown once at creation; the store keeps only its SHA-256. A slow
password hash (bcrypt, argon2) protects low-entropy secrets and would cost milliseconds on
every request; for full-entropy tokens a single SHA-256 is just as unguessable.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controlplane.domain import ConflictError
from controlplane.domain import NotFoundError
from controlplane.domain import Role
from controlplane.domain import UnauthenticatedError
from controlplane.domain import ValidationError
from controlplane.schemas.users import Principal
from controlplane.store import audit
from controlplane.store.base import utcnow
from controlplane.store.models import ApiTokenRow
from controlplane.store.models import UserRow
from controlplane.store.oncall import user_references

TOKEN_PREFIX = "cpt_"
_LAST_USED_RESOLUTION = timedelta(minutes=1)
_USER_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@-")


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_user(session: Session, *, name: str, role: Role, actor: str) -> UserRow:
    if not (1 <= len(name) <= 64) or not set(name) <= _USER_NAME_CHARS:
        raise ValidationError(
            "user name must be 1-64 characters of letters, digits, '_', '.', '@', '-'",
            field="name",
        )
    row = UserRow(name=name, role=role.value)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        raise ConflictError(f"a user named {name!r} already exists") from exc
    audit.record(
        session,
        actor=actor,
        action="user.create",
        target_type="user",
        target_id=row.id,
        detail={"name": name, "role": role.value},
    )
    return row


def get_user(session: Session, name: str) -> UserRow:
    row = session.scalars(select(UserRow).where(UserRow.name == name)).one_or_none()
    if row is None:
        raise NotFoundError(f"user {name!r} not found")
    return row


def list_users(session: Session) -> list[UserRow]:
    return list(session.scalars(select(UserRow).order_by(UserRow.name)))


def set_disabled(session: Session, *, name: str, disabled: bool, actor: str) -> UserRow:
    """Disable (every token of the user stops working at once) or enable a user."""
    row = get_user(session, name)
    if row.disabled == disabled:
        return row
    if disabled:
        _keep_an_admin(session, row, f"disabling {name!r}")
    row.disabled = disabled
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user.disable" if disabled else "user.enable",
        target_type="user",
        target_id=row.id,
        detail={"name": name},
    )
    return row


def set_role(session: Session, *, name: str, role: Role, actor: str) -> UserRow:
    row = get_user(session, name)
    if row.role == role.value:
        return row
    if role is not Role.admin:
        _keep_an_admin(session, row, f"making {name!r} {role.value}")
    before = row.role
    row.role = role.value
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user.role",
        target_type="user",
        target_id=row.id,
        detail={"name": name, "before": before, "after": role.value},
    )
    return row


def set_timezone(session: Session, *, name: str, timezone: str, actor: str) -> UserRow:
    """The zone the user's pages show times in (validated by the caller's schema)."""
    row = get_user(session, name)
    if row.timezone == timezone:
        return row
    before = row.timezone
    row.timezone = timezone
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user.timezone",
        target_type="user",
        target_id=row.id,
        detail={"name": name, "before": before, "after": timezone},
    )
    return row


def delete_user(session: Session, *, name: str, actor: str) -> None:
    """Delete a user and their tokens, contact methods, rules and team memberships. Refused
    while the user is on an on-call schedule or named by an escalation policy (the message
    names them): a schedule must never silently lose the person it pages. A team pages
    whoever is in it, so leaving one loses no slot."""
    row = get_user(session, name)
    used = user_references(session, row.id)
    if used:
        raise ConflictError(f"user {name!r} is still on call: {', '.join(used)}")
    _keep_an_admin(session, row, f"deleting {name!r}")
    session.execute(delete(UserRow).where(UserRow.id == row.id))
    session.expunge(row)
    audit.record(
        session,
        actor=actor,
        action="user.delete",
        target_type="user",
        target_id=row.id,
        detail={"name": name},
    )


def _keep_an_admin(session: Session, row: UserRow, change: str) -> None:
    """Refuse a change that would leave no enabled admin: nobody could undo it by API."""
    if row.role != Role.admin.value or row.disabled:
        return
    # Lock the admins' rows (PostgreSQL) so two concurrent demotions cannot both pass.
    admins = session.scalars(
        select(UserRow.id)
        .where(UserRow.role == Role.admin.value, UserRow.disabled.is_(False))
        .with_for_update()
    ).all()
    if set(admins) <= {row.id}:
        raise ConflictError(f"{change} would leave no enabled admin")


def create_token(
    session: Session, *, user: UserRow, name: str, ttl: timedelta | None, actor: str
) -> tuple[ApiTokenRow, str]:
    """Returns the row and the secret; the secret is not recoverable afterwards."""
    if not (1 <= len(name) <= 64):
        raise ValidationError("token name must be 1-64 characters", field="name")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiTokenRow(
        user_id=user.id,
        name=name,
        token_hash=hash_token(secret),
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        expires_at=None if ttl is None else utcnow() + ttl,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="token.create",
        target_type="token",
        target_id=row.id,
        detail={"user": user.name, "name": name, "prefix": row.prefix},
    )
    return row, secret


def list_tokens(session: Session, *, user: UserRow | None = None) -> list[ApiTokenRow]:
    query = select(ApiTokenRow).order_by(ApiTokenRow.id)
    if user is not None:
        query = query.where(ApiTokenRow.user_id == user.id)
    return list(session.scalars(query))


def revoke_token(session: Session, *, token_id: int, actor: str) -> ApiTokenRow:
    row = session.get(ApiTokenRow, token_id)
    if row is None:
        raise NotFoundError(f"token {token_id} not found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="token.revoke",
            target_type="token",
            target_id=row.id,
            detail={"prefix": row.prefix},
        )
    return row


def authenticate(session: Session, secret: str, *, now: datetime | None = None) -> Principal:
    """The principal behind a bearer secret; every failure is the same 401 message on purpose,
    so a caller cannot tell a revoked token from a mistyped one."""
    now = now or utcnow()
    principal, stale = verify(session, secret, now=now)
    if stale and principal.token_id is not None:
        stamp_last_used(session, token_id=principal.token_id, now=now)
    return principal


def stamp_last_used(session: Session, *, token_id: int, now: datetime) -> None:
    session.execute(update(ApiTokenRow).where(ApiTokenRow.id == token_id).values(last_used_at=now))


def verify(session: Session, secret: str, *, now: datetime) -> tuple[Principal, bool]:
    """Like :func:`authenticate` but read-only: also says whether ``last_used_at`` is due
    for a stamp, which the caller writes in a transaction of its own (reads stay reads)."""
    found = session.execute(
        select(ApiTokenRow, UserRow)
        .join(UserRow, UserRow.id == ApiTokenRow.user_id)
        .where(ApiTokenRow.token_hash == hash_token(secret))
    ).one_or_none()
    if found is None:
        raise UnauthenticatedError("invalid or expired API token")
    token, user = found
    if (
        token.revoked_at is not None
        or (token.expires_at is not None and token.expires_at <= now)
        or user.disabled
    ):
        raise UnauthenticatedError("invalid or expired API token")
    # Written at most once a minute per token, so read traffic does not become write traffic.
    stale = token.last_used_at is None or now - token.last_used_at > _LAST_USED_RESOLUTION
    principal = Principal(user_id=user.id, name=user.name, role=Role(user.role), token_id=token.id)
    return principal, stale
