"""Registered engines. Uniqueness is the database's job: a duplicate name surfaces as an
IntegrityError inside a SAVEPOINT and becomes :class:`ConflictError`, race-free.

An engine's admin token is stored encrypted (:mod:`controlplane.store.secrets`) and is bound
to the engine's URL: a change of ``url`` that does not restate the token (or drop it with
``null``) is refused, so nobody who may edit an engine can redirect its token elsewhere.
Credentials in URLs and the token itself never reach the audit log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controlplane.domain import ConflictError
from controlplane.domain import EngineTarget
from controlplane.domain import NotFoundError
from controlplane.domain import ValidationError
from controlplane.domain import redact_url
from controlplane.domain.ids import MAX_ROW_ID
from controlplane.domain.ids import parse_row_id
from controlplane.schemas.engines import EngineCreate
from controlplane.schemas.engines import EngineUpdate
from controlplane.store import audit
from controlplane.store.database import secret_box
from controlplane.store.models import EngineRow


def get_engine(session: Session, ref: str | int) -> EngineRow:
    """By id (an int, or a string of ASCII digits) or by name: names start with a letter."""
    if isinstance(ref, int):
        row = session.get(EngineRow, ref) if 1 <= ref <= MAX_ROW_ID else None
    elif (row_id := parse_row_id(ref)) is not None:
        row = session.get(EngineRow, row_id)
    elif ref.isascii() and ref.isdigit():
        row = None  # digits past the id range: no such row, and no name starts with a digit
    else:
        row = session.scalars(select(EngineRow).where(EngineRow.name == ref)).one_or_none()
    if row is None:
        raise NotFoundError(f"engine {ref!r} not found")
    return row


def list_engines(session: Session) -> list[EngineRow]:
    return list(session.scalars(select(EngineRow).order_by(EngineRow.name)))


def add_engine(session: Session, *, data: EngineCreate, actor: str) -> EngineRow:
    row = EngineRow(**_stored(session, data.row_values()))
    _flush_unique(session, row, data.name)
    audit.record(
        session,
        actor=actor,
        action="engine.create",
        target_type="engine",
        target_id=row.id,
        detail=_redacted(data.row_values()),
    )
    return row


def update_engine(
    session: Session, *, ref: str | int, data: EngineUpdate, actor: str
) -> EngineRow:
    row = get_engine(session, ref)
    changes = data.row_values()
    if (
        "url" in changes
        and changes["url"] != row.url
        and "admin_token" not in changes
        and row.admin_token_enc is not None
    ):
        raise ValidationError(
            "the admin token is bound to the engine's URL: to change url, send admin_token "
            "again (or null to drop it)",
            field="admin_token",
        )
    before = {key: _current(row, key) for key in changes}
    for key, value in _stored(session, changes).items():
        setattr(row, key, value)
    _flush_unique(session, row, changes.get("name", row.name))
    audit.record(
        session,
        actor=actor,
        action="engine.update",
        target_type="engine",
        target_id=row.id,
        detail={"before": _redacted(before), "after": _redacted(changes)},
    )
    return row


def remove_engine(session: Session, *, ref: str | int, actor: str) -> None:
    row = get_engine(session, ref)
    engine_id, name = row.id, row.name
    session.delete(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="engine.delete",
        target_type="engine",
        target_id=engine_id,
        detail={"name": name},
    )


def _flush_unique(session: Session, row: EngineRow, name: str) -> None:
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        raise ConflictError(f"an engine named {name!r} already exists") from exc


def _stored(session: Session, values: dict[str, Any]) -> dict[str, Any]:
    """Row values as stored: the plain ``admin_token`` becomes ``admin_token_enc``."""
    out = dict(values)
    if "admin_token" in out:
        token = out.pop("admin_token")
        out["admin_token_enc"] = (
            None if token is None else secret_box(session.get_bind()).encrypt(token)
        )
    return out


def _current(row: EngineRow, key: str) -> Any:
    if key == "admin_token":
        return None if row.admin_token_enc is None else "set"
    return getattr(row, key)


def _redacted(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    if "admin_token" in out:
        out["admin_token"] = None if out["admin_token"] is None else "***"
    for key in ("url", "metrics_url"):
        if isinstance(out.get(key), str):
            out[key] = redact_url(out[key])
    return out


def admin_token(session: Session, row: EngineRow) -> str | None:
    """The engine's admin token in clear, for calling its admin API only."""
    if row.admin_token_enc is None:
        return None
    return secret_box(session.get_bind()).decrypt(row.admin_token_enc)


def engine_target(row: EngineRow) -> EngineTarget:
    """The frozen description adapters are built from (rows never leave the store layer)."""
    session = Session.object_session(row)
    if session is None:
        raise RuntimeError("engine_target needs a row that belongs to a session")
    return EngineTarget(
        name=row.name,
        kind=row.kind,
        url=row.url,
        metrics_url=row.metrics_url,
        admin_token=admin_token(session, row),
    )


def reencrypt_tokens(session: Session, rotate: Callable[[str], str]) -> int:
    """Rewrite every stored admin token through ``rotate`` (ciphertext in, ciphertext out);
    returns how many. The caller's transaction makes it all or nothing."""
    rows = session.scalars(select(EngineRow).where(EngineRow.admin_token_enc.is_not(None)))
    count = 0
    for row in rows:
        assert row.admin_token_enc is not None
        row.admin_token_enc = rotate(row.admin_token_enc)
        count += 1
    session.flush()
    return count
