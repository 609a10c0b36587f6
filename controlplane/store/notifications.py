"""The notification outbox: rows written in the transaction that decided to page, moved by
the sender through the ``notification`` lifecycle.

Claiming is a compare-and-set (``pending -> sending``, ``attempts + 1``) so two senders (an
old leader that has not noticed it lost the lease, and the new one) never both take a row;
on PostgreSQL the candidate rows are also read ``FOR UPDATE SKIP LOCKED`` so they do not
queue behind each other. A sender that dies leaves its rows ``sending``: a sweep puts rows
claimed longer ago than the stale limit back to ``pending``. Sending is therefore
at-least-once; the idempotency key each message carries makes it once per channel.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_
from sqlalchemy import exists
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from controlplane.domain.incidents import NOTIFICATION_LIFECYCLE
from controlplane.domain.incidents import NotificationState
from controlplane.domain.incidents import NotifyAction
from controlplane.domain.incidents import incident_key
from controlplane.store.database import secret_box
from controlplane.store.models import ContactMethodRow
from controlplane.store.models import EngineRow
from controlplane.store.models import IncidentRow
from controlplane.store.models import NotificationRow
from controlplane.store.models import UserRow

N = NotificationState


@dataclass(frozen=True, slots=True)
class Planned:
    incident_id: int | None
    user_id: int | None
    contact_method_id: int
    channel: str
    action: NotifyAction
    key: str
    not_before: datetime
    step: int | None = None
    suppressed: bool = False


def enqueue(session: Session, items: Sequence[Planned], *, now: datetime) -> int:
    """Write outbox rows; a key already written is skipped (a re-run of the same decision
    adds nothing). Returns how many rows were new."""
    if not items:
        return 0
    rows = [
        {
            "incident_id": p.incident_id,
            "user_id": p.user_id,
            "contact_method_id": p.contact_method_id,
            "channel": p.channel,
            "action": p.action.value,
            "state": (N.suppressed if p.suppressed else N.pending).value,
            "idempotency_key": p.key,
            "attempts": 0,
            "retry_at": p.not_before,
            "step": p.step,
            "created": now,
            "updated": now,
        }
        for p in items
    ]
    dialect = session.get_bind().dialect.name
    maker: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = maker(NotificationRow).on_conflict_do_nothing(index_elements=["idempotency_key"])
    result = session.execute(stmt.returning(NotificationRow.id), rows)
    return len(result.all())


def work_due(session: Session, *, now: datetime, claimed_before: datetime) -> bool:
    """Whether a sender round has anything to do (a cheap read: rounds run twice a second)."""
    due = select(NotificationRow.id).where(
        or_(
            and_(NotificationRow.state == N.pending.value, NotificationRow.retry_at <= now),
            and_(
                NotificationRow.state == N.sending.value,
                NotificationRow.claimed_at < claimed_before,
            ),
        )
    )
    return session.scalar(select(exists(due))) is True


def claim_due(session: Session, *, now: datetime, limit: int) -> list[int]:
    """Move up to ``limit`` due rows ``pending -> sending``; the ids this caller won."""
    NOTIFICATION_LIFECYCLE.check(N.pending, N.sending)
    query = (
        select(NotificationRow.id)
        .where(NotificationRow.state == N.pending.value, NotificationRow.retry_at <= now)
        .order_by(NotificationRow.retry_at, NotificationRow.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    ids = list(session.scalars(query))
    if not ids:
        return []
    won = session.execute(
        update(NotificationRow)
        .where(NotificationRow.id.in_(ids), NotificationRow.state == N.pending.value)
        .values(
            state=N.sending.value,
            claimed_at=now,
            attempts=NotificationRow.attempts + 1,
            updated=now,
        )
        .returning(NotificationRow.id)
    )
    return sorted(won.scalars())


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """Everything a notifier needs for one message (the secret decrypted)."""

    id: int
    key: str
    action: NotifyAction
    channel: str
    attempts: int
    created: datetime
    address: str
    secret: dict[str, str]
    user_id: int | None
    user: str | None
    incident_id: int | None
    dedup_key: str | None
    title: str
    state: str | None
    labels: dict[str, str]
    annotations: dict[str, str]
    engine: str | None
    triggered_at: datetime | None


def load(session: Session, ids: Sequence[int]) -> list[OutboxItem]:
    if not ids:
        return []
    rows = session.execute(
        select(NotificationRow, ContactMethodRow, IncidentRow, EngineRow.name, UserRow.name)
        .outerjoin(ContactMethodRow, NotificationRow.contact_method_id == ContactMethodRow.id)
        .outerjoin(IncidentRow, NotificationRow.incident_id == IncidentRow.id)
        .outerjoin(EngineRow, IncidentRow.engine_id == EngineRow.id)
        .outerjoin(UserRow, NotificationRow.user_id == UserRow.id)
        .where(NotificationRow.id.in_(ids))
        .order_by(NotificationRow.id)
    )
    box = secret_box(session.get_bind())
    out = []
    for n, cm, inc, engine, user in rows:
        secret: dict[str, str] = {}
        if cm is not None and cm.secret_enc:
            secret = json.loads(box.decrypt(cm.secret_enc))
        out.append(
            OutboxItem(
                id=n.id,
                key=n.idempotency_key,
                action=NotifyAction(n.action),
                channel=n.channel,
                attempts=n.attempts,
                created=n.created,
                address=cm.address if cm is not None else "",
                secret=secret,
                user_id=n.user_id,
                user=user,
                incident_id=n.incident_id,
                dedup_key=incident_key(inc.id) if inc is not None else None,
                title=inc.title if inc is not None else "Test page",
                state=inc.state if inc is not None else None,
                labels=dict(inc.labels) if inc is not None else {},
                annotations=dict(inc.annotations) if inc is not None else {},
                engine=engine,
                triggered_at=inc.triggered_at if inc is not None else None,
            )
        )
    return out


def _finish(session: Session, item_id: int, to: NotificationState, **values: Any) -> bool:
    NOTIFICATION_LIFECYCLE.check(N.sending, to)
    result = session.execute(
        update(NotificationRow)
        .where(NotificationRow.id == item_id, NotificationRow.state == N.sending.value)
        .values(state=to.value, **values)
    )
    return bool(getattr(result, "rowcount", 0))


def mark_sent(session: Session, item_id: int, *, now: datetime) -> bool:
    return _finish(session, item_id, N.sent, sent_at=now, last_error=None, updated=now)


def mark_retry(
    session: Session, item_id: int, *, now: datetime, retry_at: datetime, error: str
) -> bool:
    return _finish(
        session, item_id, N.pending, retry_at=retry_at, last_error=error[:2000], updated=now
    )


def mark_failed(session: Session, item_id: int, *, now: datetime, error: str) -> bool:
    return _finish(session, item_id, N.failed, last_error=error[:2000], updated=now)


def reclaim_stale(session: Session, *, claimed_before: datetime, now: datetime) -> int:
    """Rows left ``sending`` by a sender that died go back to ``pending`` (due at once)."""
    NOTIFICATION_LIFECYCLE.check(N.sending, N.pending)
    result = session.execute(
        update(NotificationRow)
        .where(
            NotificationRow.state == N.sending.value,
            NotificationRow.claimed_at < claimed_before,
        )
        .values(state=N.pending.value, retry_at=now, updated=now, last_error="sender lost")
    )
    return int(getattr(result, "rowcount", 0) or 0)


def cancel_pending(session: Session, incident_id: int, *, now: datetime) -> int:
    """Pages not yet sent for an incident that was acknowledged or resolved."""
    NOTIFICATION_LIFECYCLE.check(N.pending, N.cancelled)
    result = session.execute(
        update(NotificationRow)
        .where(
            NotificationRow.incident_id == incident_id,
            NotificationRow.state == N.pending.value,
            NotificationRow.action == NotifyAction.trigger.value,
        )
        .values(state=N.cancelled.value, updated=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def paged_methods(session: Session, incident_id: int) -> list[tuple[int | None, int, str]]:
    """(user, contact method, channel) that an incident's trigger reached (or may have)."""
    rows = session.execute(
        select(NotificationRow.user_id, NotificationRow.contact_method_id, NotificationRow.channel)
        .where(
            NotificationRow.incident_id == incident_id,
            NotificationRow.action == NotifyAction.trigger.value,
            NotificationRow.state.in_([N.sent.value, N.sending.value]),
            NotificationRow.contact_method_id.is_not(None),
        )
        .distinct()
    )
    return [(u, cm, ch) for u, cm, ch in rows if cm is not None]


def counts_by_state(session: Session) -> dict[tuple[str, str], int]:
    rows = session.execute(
        select(NotificationRow.channel, NotificationRow.state, func.count()).group_by(
            NotificationRow.channel, NotificationRow.state
        )
    )
    return {(ch, st): int(n) for ch, st, n in rows}


def list_for_incident(
    session: Session, incident_id: int
) -> list[tuple[NotificationRow, str | None]]:
    return [
        (n, user)
        for n, user in session.execute(
            select(NotificationRow, UserRow.name)
            .outerjoin(UserRow, NotificationRow.user_id == UserRow.id)
            .where(NotificationRow.incident_id == incident_id)
            .order_by(NotificationRow.id)
        )
    ]
