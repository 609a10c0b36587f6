"""Versioned engine configurations and the last-known-good (LKG) marker.

Versions count up per engine; the (engine, version) unique constraint turns two concurrent
writers into one winner and one :class:`ConflictError`. At most one version per engine is
LKG, enforced by a partial unique index, so the marker moves in two flushed steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controlplane.domain import ConflictError
from controlplane.domain import NotFoundError
from controlplane.store.models import EngineConfigRow


def record_config(
    session: Session,
    *,
    engine_id: int,
    config: Mapping[str, Any],
    source: str,
    actor: str,
) -> EngineConfigRow:
    latest = session.scalar(
        select(func.max(EngineConfigRow.version)).where(EngineConfigRow.engine_id == engine_id)
    )
    row = EngineConfigRow(
        engine_id=engine_id,
        version=(latest or 0) + 1,
        config=dict(config),
        source=source,
        created_by=actor,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        raise ConflictError(f"engine {engine_id}: config version written concurrently") from exc
    return row


def config_history(session: Session, engine_id: int, *, limit: int = 100) -> list[EngineConfigRow]:
    query = (
        select(EngineConfigRow)
        .where(EngineConfigRow.engine_id == engine_id)
        .order_by(EngineConfigRow.version.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def latest_config(session: Session, engine_id: int) -> EngineConfigRow | None:
    history = config_history(session, engine_id, limit=1)
    return history[0] if history else None


def last_known_good(session: Session, engine_id: int) -> EngineConfigRow | None:
    query = select(EngineConfigRow).where(
        EngineConfigRow.engine_id == engine_id, EngineConfigRow.is_last_known_good.is_(True)
    )
    return session.scalars(query).one_or_none()


def mark_last_known_good(session: Session, config: EngineConfigRow) -> None:
    session.execute(
        update(EngineConfigRow)
        .where(
            EngineConfigRow.engine_id == config.engine_id,
            EngineConfigRow.is_last_known_good.is_(True),
            EngineConfigRow.id != config.id,
        )
        .values(is_last_known_good=False)
        .execution_options(synchronize_session="fetch")
    )
    session.flush()
    config.is_last_known_good = True
    session.flush()


def get_config(session: Session, config_id: int) -> EngineConfigRow:
    row = session.get(EngineConfigRow, config_id)
    if row is None:
        raise NotFoundError(f"engine config {config_id} not found")
    return row
