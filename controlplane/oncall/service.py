"""On-call operations shared by the API and the CLI: who is on call, shifts, test pages."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.domain import NotFoundError
from controlplane.domain.incidents import NotifyAction
from controlplane.schemas.oncall import OnCallRead
from controlplane.schemas.oncall import ShiftRead
from controlplane.store import audit
from controlplane.store import notifications
from controlplane.store import oncall
from controlplane.store.models import ContactMethodRow
from controlplane.store.models import UserRow


def who_is_on_call(session: Session, *, schedule: str | None, at: datetime) -> list[OnCallRead]:
    loaded = (
        [oncall.load_schedule(session, schedule)] if schedule else oncall.all_schedules(session)
    )
    out = []
    for item in loaded:
        who = item.schedule.on_call(at)
        out.append(
            OnCallRead(
                schedule=item.name,
                at=at,
                user=item.names.get(who.user_id) if who else None,
                source=who.source if who else None,
            )
        )
    return out


def shifts(session: Session, ref: str, start: datetime, end: datetime) -> list[ShiftRead]:
    item = oncall.load_schedule(session, ref)
    return [
        ShiftRead(
            user=item.names.get(s.user_id, str(s.user_id)),
            starts_at=s.starts_at,
            ends_at=s.ends_at,
            source=s.source,
        )
        for s in item.schedule.shifts(start, end)
    ]


def send_test_pages(session: Session, *, user: str, actor: str, now: datetime) -> int:
    """A test message to each of ``user``'s contact methods, through the outbox like a page."""
    uid = session.scalar(select(UserRow.id).where(UserRow.name == user))
    if uid is None:
        raise NotFoundError(f"user {user!r} not found")
    methods = list(
        session.execute(
            select(ContactMethodRow.id, ContactMethodRow.kind).where(
                ContactMethodRow.user_id == uid
            )
        )
    )
    stamp = int(now.timestamp() * 1000)
    queued = notifications.enqueue(
        session,
        [
            notifications.Planned(
                incident_id=None,
                user_id=uid,
                contact_method_id=cm,
                channel=kind,
                action=NotifyAction.test,
                key=f"cplane-test:{uid}:{stamp}:cm{cm}",
                not_before=now,
            )
            for cm, kind in methods
        ],
        now=now,
    )
    audit.record(
        session,
        actor=actor,
        action="notify.test",
        target_type="user",
        target_id=user,
        detail={"queued": queued},
    )
    return queued
