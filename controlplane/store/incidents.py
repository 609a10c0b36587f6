"""Incidents in the store: alerts grouped into incidents as they arrive, escalation steps
that write the outbox, and the acknowledge / resolve / snooze / note moves.

:func:`alerts_changed` is called by ``controlplane.store.alerts`` for every alert that
started firing or resolved, whatever brought it (Alertmanager's webhook, a guard event, a
detector), in the same transaction: an alert is never stored without its incident, and the
first escalation step (the outbox rows of the first page) commits with it. Later steps are
run by the leader's escalation job through :func:`escalate_due`.

Cost per delivery does not grow with its alerts beyond a fixed number of statements: one
read of the alerts, one of the routes, one of the open incidents their keys name, one insert
of the links. A storm of 10,000 alerts in 50 groups opens 50 incidents and pages 50 times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from typing import Any

from sqlalchemy import and_
from sqlalchemy import case
from sqlalchemy import exists
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.domain import NotFoundError
from controlplane.domain import ValidationError
from controlplane.domain.alerts import AlertState
from controlplane.domain.escalation import Position
from controlplane.domain.escalation import TargetKind
from controlplane.domain.escalation import plan_notifications
from controlplane.domain.incidents import DEFAULT_GROUP_BY
from controlplane.domain.incidents import INCIDENT_LIFECYCLE
from controlplane.domain.incidents import OPEN_INCIDENT_STATES
from controlplane.domain.incidents import REOPEN_WINDOW
from controlplane.domain.incidents import IncidentState
from controlplane.domain.incidents import NotificationState
from controlplane.domain.incidents import NotifyAction
from controlplane.domain.incidents import group_hash
from controlplane.domain.incidents import group_labels
from controlplane.domain.incidents import incident_key
from controlplane.domain.incidents import incident_title
from controlplane.domain.matchers import matches_all
from controlplane.schemas.oncall import IncidentDetail
from controlplane.schemas.oncall import IncidentEventRead
from controlplane.schemas.oncall import IncidentRead
from controlplane.schemas.oncall import NotificationRead
from controlplane.store import audit
from controlplane.store import incident_context
from controlplane.store import notifications
from controlplane.store import oncall
from controlplane.store import teams
from controlplane.store.base import utcnow
from controlplane.store.lifecycle import transition
from controlplane.store.models import AlertRow
from controlplane.store.models import ContactMethodRow
from controlplane.store.models import EngineRow
from controlplane.store.models import EscalationPolicyRow
from controlplane.store.models import IncidentAlertRow
from controlplane.store.models import IncidentEventRow
from controlplane.store.models import IncidentRow
from controlplane.store.models import NotificationRow
from controlplane.store.models import UserRow

SYSTEM = "system:oncall"
_CHUNK = 500


def _chunks(values: Sequence[int]) -> list[Sequence[int]]:
    return [values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK)]


def event(
    session: Session,
    incident_id: int,
    kind: str,
    *,
    actor: str,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        IncidentEventRow(
            incident_id=incident_id, at=now, kind=kind, actor=actor, detail=detail or {}
        )
    )


@dataclass
class _Group:
    route: oncall.Route | None
    labels: dict[str, str]
    annotations: dict[str, str]
    engine_id: int | None
    alert_ids: list[int] = field(default_factory=list)


def alerts_changed(
    session: Session,
    *,
    fired: Sequence[int],
    resolved: Sequence[int],
    now: datetime,
    actor: str,
) -> list[int]:
    """Group newly firing alerts into incidents (opening, reopening or joining one) and
    resolve incidents whose alerts all resolved. Returns the incidents touched."""
    touched: list[int] = []
    if fired:
        touched += _group_fired(session, list(fired), now=now, actor=actor)
    if resolved:
        touched += _settle_resolved(session, list(resolved), now=now, actor=actor)
    return touched


def _group_fired(session: Session, fired: list[int], *, now: datetime, actor: str) -> list[int]:
    routes = oncall.routes(session)
    groups: dict[str, _Group] = {}
    for chunk in _chunks(fired):
        for aid, labels, notes, engine_id in session.execute(
            select(AlertRow.id, AlertRow.labels, AlertRow.annotations, AlertRow.engine_id).where(
                AlertRow.id.in_(chunk)
            )
        ):
            route = next((r for r in routes if matches_all(r.matchers, labels)), None)
            by = (route.group_by if route else ()) or DEFAULT_GROUP_BY
            key = group_hash(labels, by, route=route.name if route else "")
            group = groups.get(key)
            if group is None:
                group = groups[key] = _Group(route, dict(labels), dict(notes), engine_id)
            group.alert_ids.append(aid)
    if not groups:
        return []
    open_rows: dict[str, IncidentRow] = {
        row.group_hash: row
        for row in session.scalars(
            select(IncidentRow).where(
                IncidentRow.group_hash.in_(list(groups)),
                IncidentRow.state.in_(OPEN_INCIDENT_STATES),
            )
        )
    }
    touched = []
    links: list[dict[str, int]] = []
    for key, group in groups.items():
        row = open_rows.get(key)
        if row is None:
            row = _reopen_or_open(session, key, group, now=now, actor=actor)
        else:
            event(
                session,
                row.id,
                "alerts_added",
                actor=actor,
                now=now,
                detail={"alerts": len(group.alert_ids)},
            )
        touched.append(row.id)
        links += [{"incident_id": row.id, "alert_id": a} for a in group.alert_ids]
    known = set()
    for chunk in _chunks([link["alert_id"] for link in links]):
        known |= set(
            (i, a)
            for i, a in session.execute(
                select(IncidentAlertRow.incident_id, IncidentAlertRow.alert_id).where(
                    IncidentAlertRow.alert_id.in_(chunk)
                )
            ).all()
        )
    fresh = [link for link in links if (link["incident_id"], link["alert_id"]) not in known]
    if fresh:
        session.execute(insert(IncidentAlertRow), fresh)
    return touched


def _reopen_or_open(
    session: Session, key: str, group: _Group, *, now: datetime, actor: str
) -> IncidentRow:
    recent = session.scalars(
        select(IncidentRow)
        .where(
            IncidentRow.group_hash == key,
            IncidentRow.state == IncidentState.resolved.value,
            IncidentRow.resolved_at >= now - REOPEN_WINDOW,
        )
        .order_by(IncidentRow.resolved_at.desc())
        .limit(1)
    ).one_or_none()
    restart = {
        "triggered_at": now,
        "acknowledged_at": None,
        "acknowledged_by": None,
        "resolved_at": None,
        "snoozed_until": None,
        "escalation_step": 0,
        "escalation_loop": 0,
        "next_escalation_at": now,
        "annotations": group.annotations,
    }
    if recent is not None:
        transition(
            session,
            recent,
            IncidentState.triggered,
            lifecycle=INCIDENT_LIFECYCLE,
            actor=actor,
            values=restart,
            detail={"reason": "re-fired"},
        )
        event(session, recent.id, "reopened", actor=actor, now=now)
        _run_step(session, recent, now=now)
        return recent
    route = group.route
    row = IncidentRow(
        group_hash=key,
        group_labels=group_labels(
            group.labels, (route.group_by if route else ()) or DEFAULT_GROUP_BY
        ),
        labels=group.labels,
        annotations=group.annotations,
        title=incident_title(group.labels, group.annotations),
        state=IncidentState.triggered.value,
        engine_id=group.engine_id,
        route_id=route.id if route else None,
        policy_id=route.policy_id if route else None,
        auto_resolve=route.auto_resolve if route else True,
        escalation_step=0,
        escalation_loop=0,
        next_escalation_at=now,
        triggered_at=now,
    )
    session.add(row)
    session.flush()
    event(
        session,
        row.id,
        "opened",
        actor=actor,
        now=now,
        detail={"route": route.name if route else None, "alerts": len(group.alert_ids)},
    )
    _run_step(session, row, now=now)
    return row


def _settle_resolved(
    session: Session, resolved: list[int], *, now: datetime, actor: str
) -> list[int]:
    ids: set[int] = set()
    for chunk in _chunks(resolved):
        ids |= set(
            session.scalars(
                select(IncidentAlertRow.incident_id)
                .join(IncidentRow, IncidentRow.id == IncidentAlertRow.incident_id)
                .where(
                    IncidentAlertRow.alert_id.in_(chunk),
                    IncidentRow.state.in_(OPEN_INCIDENT_STATES),
                )
            )
        )
    done = []
    for incident_id in sorted(ids):
        row = session.get(IncidentRow, incident_id)
        if row is None or not row.auto_resolve:
            continue
        still = session.scalar(
            select(func.count())
            .select_from(IncidentAlertRow)
            .join(AlertRow, AlertRow.id == IncidentAlertRow.alert_id)
            .where(
                IncidentAlertRow.incident_id == incident_id,
                AlertRow.state == AlertState.firing.value,
            )
        )
        if still:
            continue
        _resolve(session, row, actor=actor, now=now, reason="all alerts resolved")
        done.append(incident_id)
    return done


# -- escalation --------------------------------------------------------------------------


def _step_targets(
    session: Session, policy: EscalationPolicyRow, step: int, *, now: datetime
) -> tuple[list[int], list[dict[str, Any]]]:
    users: list[int] = []
    seen: list[dict[str, Any]] = []
    for target in oncall.to_domain(policy).steps[step].targets:
        if target.kind is TargetKind.user:
            users.append(target.id)
            seen.append({"user": target.id})
            continue
        if target.kind is TargetKind.team:
            members = teams.member_ids(session, target.id)
            users.extend(members)
            seen.append({"team": target.id, "members": members})
            continue
        try:
            loaded = oncall.load_schedule(session, str(target.id))
        except NotFoundError:
            seen.append({"schedule": target.id, "on_call": None, "missing": True})
            continue
        who = loaded.schedule.on_call(now)
        seen.append({"schedule": loaded.name, "on_call": who.user_id if who else None})
        if who is not None:
            users.append(who.user_id)
    return users, seen


def _silenced_by(session: Session, labels: dict[str, str], now: datetime) -> int | None:
    for silence_id, matchers in oncall.active_silences(session, now):
        if matches_all(matchers, labels):
            return silence_id
    return None


def _run_step(session: Session, row: IncidentRow, *, now: datetime) -> int:
    """Run the incident's current escalation step: outbox rows for everyone it reaches, a
    timeline entry, and the time of the next step. Returns the rows written."""
    policy = oncall.get_policy_row(session, row.policy_id) if row.policy_id else None
    if policy is None or not policy.steps:
        row.next_escalation_at = None
        event(session, row.id, "not_paged", actor=SYSTEM, now=now, detail={"reason": "no policy"})
        return 0
    domain_policy = oncall.to_domain(policy)
    position = Position(row.escalation_step, row.escalation_loop)
    if position.step >= len(domain_policy.steps):  # the policy lost steps meanwhile
        position = Position(0, position.loop)
    users, seen = _step_targets(session, policy, position.step, now=now)
    rules, methods = oncall.rules_and_methods(session, users)
    planned = plan_notifications(users, rules, methods, now=now)
    channels: dict[int, str] = dict(
        (cm, kind)
        for cm, kind in session.execute(
            select(ContactMethodRow.id, ContactMethodRow.kind).where(
                ContactMethodRow.id.in_([p.contact_method_id for p in planned] or [0])
            )
        ).all()
    )
    silence = _silenced_by(session, row.labels, now)
    cycle = int(row.triggered_at.timestamp())
    # The step's scheduled time names this run of it: a step run again after a snooze (or a
    # reopen) is a new message; the same scheduled run can only ever write its rows once.
    due = int((row.next_escalation_at or now).timestamp() * 1000)
    written = notifications.enqueue(
        session,
        [
            notifications.Planned(
                incident_id=row.id,
                user_id=p.user_id,
                contact_method_id=p.contact_method_id,
                channel=channels[p.contact_method_id],
                action=NotifyAction.trigger,
                key=f"{incident_key(row.id)}:{cycle}:trigger:{position.loop}.{position.step}"
                f":{due}:cm{p.contact_method_id}",
                not_before=p.not_before,
                step=position.step,
                suppressed=silence is not None,
            )
            for p in planned
            if p.contact_method_id in channels
        ],
        now=now,
    )
    detail: dict[str, Any] = {
        "step": position.step,
        "loop": position.loop,
        "targets": seen,
        "notifications": written,
    }
    if silence is not None:
        detail["suppressed_by_silence"] = silence
    event(
        session,
        row.id,
        "suppressed" if silence else "escalated",
        actor=SYSTEM,
        now=now,
        detail=detail,
    )
    nxt = domain_policy.after(position)
    delay = domain_policy.steps[position.step].delay_s
    if nxt is None:
        row.next_escalation_at = None
        row.escalation_step = len(domain_policy.steps)
    else:
        row.escalation_step, row.escalation_loop = nxt.step, nxt.loop
        row.next_escalation_at = now + timedelta(seconds=delay)
    session.flush()
    return written


def escalation_due(session: Session, *, now: datetime) -> bool:
    """Whether a step is due or a snooze has ended (a cheap read for a job that runs every
    second)."""
    due = select(IncidentRow.id).where(
        or_(
            and_(
                IncidentRow.state == IncidentState.triggered.value,
                IncidentRow.next_escalation_at <= now,
            ),
            and_(
                IncidentRow.state == IncidentState.snoozed.value,
                IncidentRow.snoozed_until <= now,
            ),
        )
    )
    return session.scalar(select(exists(due))) is True


def escalate_due(session: Session, *, now: datetime, limit: int = 100) -> int:
    """Run every due step (and wake snoozed incidents whose snooze ended)."""
    woken = list(
        session.scalars(
            select(IncidentRow)
            .where(
                IncidentRow.state == IncidentState.snoozed.value, IncidentRow.snoozed_until <= now
            )
            .limit(limit)
        )
    )
    for row in woken:
        transition(
            session,
            row,
            IncidentState.triggered,
            lifecycle=INCIDENT_LIFECYCLE,
            actor=SYSTEM,
            values={
                "snoozed_until": None,
                "escalation_step": 0,
                "escalation_loop": 0,
                "next_escalation_at": now,
            },
            detail={"reason": "snooze ended"},
        )
        event(session, row.id, "snooze_ended", actor=SYSTEM, now=now)
    query = (
        select(IncidentRow)
        .where(
            IncidentRow.state == IncidentState.triggered.value,
            IncidentRow.next_escalation_at <= now,
        )
        .order_by(IncidentRow.next_escalation_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    steps = 0
    for row in session.scalars(query):
        _run_step(session, row, now=now)
        steps += 1
    return steps + len(woken)


# -- people acting on incidents ----------------------------------------------------------


def _row(session: Session, incident_id: int) -> IncidentRow:
    row = session.get(IncidentRow, incident_id)
    if row is None:
        raise NotFoundError(f"incident {incident_id} not found")
    return row


def _follow_up(session: Session, row: IncidentRow, action: NotifyAction, *, now: datetime) -> int:
    """Tell the channels the trigger reached that the incident moved: PagerDuty gets
    acknowledge and resolve events (same ``dedup_key``); chat, mail and webhooks get resolve."""
    items = []
    cycle = int(row.triggered_at.timestamp())
    stamp = int(now.timestamp() * 1000)
    for user_id, cm, channel in notifications.paged_methods(session, row.id):
        if action is NotifyAction.acknowledge and channel != "pagerduty":
            continue
        items.append(
            notifications.Planned(
                incident_id=row.id,
                user_id=user_id,
                contact_method_id=cm,
                channel=channel,
                action=action,
                key=f"{incident_key(row.id)}:{cycle}:{action.value}:{stamp}:cm{cm}",
                not_before=now,
            )
        )
    return notifications.enqueue(session, items, now=now)


def _resolve(
    session: Session, row: IncidentRow, *, actor: str, now: datetime, reason: str
) -> None:
    transition(
        session,
        row,
        IncidentState.resolved,
        lifecycle=INCIDENT_LIFECYCLE,
        actor=actor,
        expect=[IncidentState(row.state)],
        values={"resolved_at": now, "next_escalation_at": None, "snoozed_until": None},
        detail={"reason": reason},
    )
    cancelled = notifications.cancel_pending(session, row.id, now=now)
    sent = _follow_up(session, row, NotifyAction.resolve, now=now)
    event(
        session,
        row.id,
        "resolved",
        actor=actor,
        now=now,
        detail={"reason": reason, "cancelled": cancelled, "notified": sent},
    )


def acknowledge(session: Session, incident_id: int, *, actor: str, now: datetime) -> IncidentRead:
    row = _row(session, incident_id)
    if row.state == IncidentState.acknowledged.value:
        return _read_one(session, row)
    transition(
        session,
        row,
        IncidentState.acknowledged,
        lifecycle=INCIDENT_LIFECYCLE,
        actor=actor,
        values={
            "acknowledged_at": now,
            "acknowledged_by": actor,
            "next_escalation_at": None,
            "snoozed_until": None,
        },
    )
    cancelled = notifications.cancel_pending(session, row.id, now=now)
    sent = _follow_up(session, row, NotifyAction.acknowledge, now=now)
    event(
        session,
        row.id,
        "acknowledged",
        actor=actor,
        now=now,
        detail={"cancelled": cancelled, "notified": sent},
    )
    return _read_one(session, row)


def resolve(session: Session, incident_id: int, *, actor: str, now: datetime) -> IncidentRead:
    row = _row(session, incident_id)
    if row.state != IncidentState.resolved.value:
        _resolve(session, row, actor=actor, now=now, reason="resolved by hand")
    return _read_one(session, row)


def snooze(
    session: Session, incident_id: int, *, minutes: int, actor: str, now: datetime
) -> IncidentRead:
    row = _row(session, incident_id)
    if row.state == IncidentState.resolved.value:
        raise ValidationError("a resolved incident cannot be snoozed", field="incident")
    until = now + timedelta(minutes=minutes)
    if row.state == IncidentState.snoozed.value:
        row.snoozed_until = until
    else:
        transition(
            session,
            row,
            IncidentState.snoozed,
            lifecycle=INCIDENT_LIFECYCLE,
            actor=actor,
            values={"snoozed_until": until, "next_escalation_at": None},
            detail={"until": until.isoformat()},
        )
    cancelled = notifications.cancel_pending(session, row.id, now=now)
    event(
        session,
        row.id,
        "snoozed",
        actor=actor,
        now=now,
        detail={"until": until.isoformat(), "cancelled": cancelled},
    )
    session.flush()
    return _read_one(session, row)


def add_note(session: Session, incident_id: int, *, text: str, actor: str, now: datetime) -> None:
    row = _row(session, incident_id)
    event(session, row.id, "note", actor=actor, now=now, detail={"text": text})
    # A note is a mutation like the moves: in the audit log too (the timeline keeps the text).
    audit.record(
        session,
        actor=actor,
        action="incident.note",
        target_type="incident",
        target_id=row.id,
        detail={"chars": len(text)},
    )
    session.flush()


# -- reads -------------------------------------------------------------------------------


def _counts(session: Session, ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    if not ids:
        return {}
    rows = session.execute(
        select(
            IncidentAlertRow.incident_id,
            func.count(),
            func.sum(case((AlertRow.state == AlertState.firing.value, 1), else_=0)),
        )
        .join(AlertRow, AlertRow.id == IncidentAlertRow.alert_id)
        .where(IncidentAlertRow.incident_id.in_(ids))
        .group_by(IncidentAlertRow.incident_id)
    )
    return {i: (int(firing or 0), int(total)) for i, total, firing in rows}


# A page that was (or is being) delivered; cancelled and suppressed ones reached nobody.
_PAGED_STATES = tuple(
    s.value
    for s in (
        NotificationState.pending,
        NotificationState.sending,
        NotificationState.sent,
        NotificationState.failed,
    )
)


def paged_users(session: Session, ids: Sequence[int]) -> dict[int, list[str]]:
    """Who each incident's escalation paged (its trigger messages), by name, in one query."""
    if not ids:
        return {}
    out: dict[int, list[str]] = {}
    rows = session.execute(
        select(NotificationRow.incident_id, UserRow.name)
        .join(UserRow, UserRow.id == NotificationRow.user_id)
        .where(
            NotificationRow.incident_id.in_(ids),
            NotificationRow.action == NotifyAction.trigger.value,
            NotificationRow.state.in_(_PAGED_STATES),
        )
        .group_by(NotificationRow.incident_id, UserRow.name)
        .order_by(NotificationRow.incident_id, func.min(NotificationRow.id))
    )
    for incident_id, name in rows:
        if incident_id is not None:
            out.setdefault(incident_id, []).append(name)
    return out


def _read(
    row: IncidentRow, engine: str | None, policy: str | None, counts: tuple[int, int]
) -> IncidentRead:
    return IncidentRead(
        id=row.id,
        key=incident_key(row.id),
        title=row.title,
        state=IncidentState(row.state),
        engine=engine,
        labels=row.labels,
        group_labels=row.group_labels,
        policy=policy,
        escalation_step=row.escalation_step,
        escalation_loop=row.escalation_loop,
        next_escalation_at=row.next_escalation_at,
        snoozed_until=row.snoozed_until,
        triggered_at=row.triggered_at,
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
        resolved_at=row.resolved_at,
        alerts_firing=counts[0],
        alerts_total=counts[1],
    )


def _query() -> Any:
    return (
        select(IncidentRow, EngineRow.name, EscalationPolicyRow.name)
        .outerjoin(EngineRow, IncidentRow.engine_id == EngineRow.id)
        .outerjoin(EscalationPolicyRow, IncidentRow.policy_id == EscalationPolicyRow.id)
    )


def _read_one(session: Session, row: IncidentRow) -> IncidentRead:
    found = session.execute(_query().where(IncidentRow.id == row.id)).one()
    return _read(found[0], found[1], found[2], _counts(session, [row.id]).get(row.id, (0, 0)))


def list_incidents(
    session: Session, *, states: Sequence[IncidentState] = (), limit: int = 100
) -> list[IncidentRead]:
    query = _query()
    if states:
        query = query.where(IncidentRow.state.in_([s.value for s in states]))
    rows = list(session.execute(query.order_by(IncidentRow.id.desc()).limit(limit)))
    counts = _counts(session, [r[0].id for r in rows])
    return [_read(r, e, p, counts.get(r.id, (0, 0))) for r, e, p in rows]


def get_incident(
    session: Session,
    incident_id: int,
    *,
    now: datetime | None = None,
    lead: timedelta = incident_context.DEFAULT_LEAD,
) -> IncidentDetail:
    """The incident with its alerts, timeline, notifications and the rollouts and tuning
    runs of its engine from ``lead`` before it opened to its resolution (or ``now``)."""
    row = _row(session, incident_id)
    start, end = incident_context.window(
        row.triggered_at, row.resolved_at, now=now or utcnow(), lead=lead
    )
    engine_id = row.engine_id
    base = _read_one(session, row)
    alert_ids = list(
        session.scalars(
            select(IncidentAlertRow.alert_id)
            .where(IncidentAlertRow.incident_id == incident_id)
            .order_by(IncidentAlertRow.alert_id)
        )
    )
    timeline = [
        IncidentEventRead(at=e.at, kind=e.kind, actor=e.actor, detail=e.detail)
        for e in session.scalars(
            select(IncidentEventRow)
            .where(IncidentEventRow.incident_id == incident_id)
            .order_by(IncidentEventRow.id)
        )
    ]
    sent = [
        NotificationRead(
            id=n.id,
            user=user,
            channel=n.channel,
            action=n.action,
            state=n.state,
            attempts=n.attempts,
            retry_at=n.retry_at,
            sent_at=n.sent_at,
            last_error=n.last_error,
        )
        for n, user in notifications.list_for_incident(session, incident_id)
    ]
    return IncidentDetail(
        **base.model_dump(),
        annotations=row.annotations,
        alert_ids=alert_ids,
        timeline=timeline,
        notifications=sent,
        context_from=start,
        context_to=end,
        rollouts=[]
        if engine_id is None
        else incident_context.nearby_rollouts(session, engine_id, start, end),
        tuning_runs=[]
        if engine_id is None
        else incident_context.nearby_tuning_runs(session, engine_id, start, end),
    )


def counts_by_state(session: Session) -> dict[str, int]:
    return {
        state: int(n)
        for state, n in session.execute(
            select(IncidentRow.state, func.count()).group_by(IncidentRow.state)
        )
    }


def user_id(session: Session, name: str) -> int:
    found = session.scalar(select(UserRow.id).where(UserRow.name == name))
    if found is None:
        raise NotFoundError(f"user {name!r} not found")
    return found
