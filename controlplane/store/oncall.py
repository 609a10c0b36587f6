"""On-call configuration in the store: contact methods (secrets encrypted with the store's
keys), notification rules, schedules with their layers and overrides, escalation policies,
routes and silences; and the reads that turn them into domain values.

Names are resolved here: an input naming an unknown user or schedule is refused with a
:class:`ValidationError` naming the field, never stored half-resolved.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import time
from typing import Any

from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.domain import ConflictError
from controlplane.domain import NotFoundError
from controlplane.domain import ValidationError
from controlplane.domain.escalation import ChannelKind
from controlplane.domain.escalation import EscalationPolicy
from controlplane.domain.escalation import EscalationStep
from controlplane.domain.escalation import NotificationRule
from controlplane.domain.escalation import Target
from controlplane.domain.escalation import TargetKind
from controlplane.domain.matchers import Matcher
from controlplane.domain.matchers import parse_matchers
from controlplane.domain.oncall_schedules import Layer
from controlplane.domain.oncall_schedules import Override
from controlplane.domain.oncall_schedules import Restriction
from controlplane.domain.oncall_schedules import RotationKind
from controlplane.domain.oncall_schedules import Schedule
from controlplane.domain.oncall_schedules import validate_overrides
from controlplane.schemas.oncall import ContactMethodCreate
from controlplane.schemas.oncall import ContactMethodRead
from controlplane.schemas.oncall import LayerRead
from controlplane.schemas.oncall import NotificationRuleCreate
from controlplane.schemas.oncall import NotificationRuleRead
from controlplane.schemas.oncall import OverrideCreate
from controlplane.schemas.oncall import OverrideRead
from controlplane.schemas.oncall import PolicyCreate
from controlplane.schemas.oncall import PolicyRead
from controlplane.schemas.oncall import RouteCreate
from controlplane.schemas.oncall import RouteRead
from controlplane.schemas.oncall import ScheduleCreate
from controlplane.schemas.oncall import ScheduleRead
from controlplane.schemas.oncall import SilenceCreate
from controlplane.schemas.oncall import SilenceRead
from controlplane.store import audit
from controlplane.store.database import secret_box
from controlplane.store.models import ContactMethodRow
from controlplane.store.models import EscalationPolicyRow
from controlplane.store.models import NotificationRuleRow
from controlplane.store.models import OncallLayerMemberRow
from controlplane.store.models import OncallLayerRow
from controlplane.store.models import OncallOverrideRow
from controlplane.store.models import OncallRouteRow
from controlplane.store.models import OncallScheduleRow
from controlplane.store.models import OncallTeamRow
from controlplane.store.models import SilenceRow
from controlplane.store.models import UserRow


def _user_id(session: Session, name: str, *, field: str) -> int:
    found = session.scalar(select(UserRow.id).where(UserRow.name == name))
    if found is None:
        raise ValidationError(f"{field}: unknown user {name!r}", field=field)
    return found


def _user_names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(session.execute(select(UserRow.id, UserRow.name).where(UserRow.id.in_(ids))).all())


def _user(session: Session, name: str) -> UserRow:
    row = session.scalars(select(UserRow).where(UserRow.name == name)).one_or_none()
    if row is None:
        raise NotFoundError(f"user {name!r} not found")
    return row


# -- contact methods and rules ----------------------------------------------------------


def _masked(url: str) -> str:
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    return f"{scheme}://{host}/…"


def add_contact_method(
    session: Session, *, user: str, body: ContactMethodCreate, actor: str
) -> ContactMethodRead:
    owner = _user(session, user)
    secret: dict[str, str] = {}
    if body.kind is ChannelKind.email:
        address = body.address or ""
    elif body.kind is ChannelKind.pagerduty:
        key = body.routing_key.get_secret_value() if body.routing_key else ""
        secret["routing_key"] = key
        address = f"pagerduty:…{key[-4:]}"
    else:
        url = body.url.get_secret_value() if body.url else ""
        secret["url"] = url
        if body.secret is not None:
            secret["secret"] = body.secret.get_secret_value()
        address = _masked(url)
    exists = session.scalar(
        select(ContactMethodRow.id).where(
            ContactMethodRow.user_id == owner.id, ContactMethodRow.name == body.name
        )
    )
    if exists is not None:
        raise ConflictError(f"user {user!r} already has a contact method {body.name!r}")
    enc = secret_box(session.get_bind()).encrypt(json.dumps(secret)) if secret else None
    row = ContactMethodRow(
        user_id=owner.id, name=body.name, kind=body.kind.value, address=address, secret_enc=enc
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="contact_method.create",
        target_type="user",
        target_id=owner.name,
        detail={"name": body.name, "kind": body.kind.value, "address": address},
    )
    return ContactMethodRead(
        id=row.id, user=owner.name, name=row.name, kind=body.kind, address=address
    )


def list_contact_methods(session: Session, *, user: str) -> list[ContactMethodRead]:
    owner = _user(session, user)
    rows = session.scalars(
        select(ContactMethodRow)
        .where(ContactMethodRow.user_id == owner.id)
        .order_by(ContactMethodRow.id)
    )
    return [
        ContactMethodRead(
            id=r.id, user=owner.name, name=r.name, kind=ChannelKind(r.kind), address=r.address
        )
        for r in rows
    ]


def remove_contact_method(session: Session, *, user: str, name: str, actor: str) -> None:
    owner = _user(session, user)
    result = session.execute(
        delete(ContactMethodRow).where(
            ContactMethodRow.user_id == owner.id, ContactMethodRow.name == name
        )
    )
    if not getattr(result, "rowcount", 0):
        raise NotFoundError(f"user {user!r} has no contact method {name!r}")
    audit.record(
        session,
        actor=actor,
        action="contact_method.delete",
        target_type="user",
        target_id=owner.name,
        detail={"name": name},
    )


def reencrypt_secrets(session: Session, rotate: Callable[[str], str]) -> int:
    """Re-encrypt every contact-method secret (``cplane db rotate-key``, with the engine
    tokens, in the same transaction)."""
    rows = session.scalars(
        select(ContactMethodRow).where(ContactMethodRow.secret_enc.is_not(None))
    )
    count = 0
    for row in rows:
        assert row.secret_enc is not None
        row.secret_enc = rotate(row.secret_enc)
        count += 1
    session.flush()
    return count


def contact_secret(session: Session, secret_enc: str | None) -> dict[str, str]:
    if not secret_enc:
        return {}
    value: dict[str, str] = json.loads(secret_box(session.get_bind()).decrypt(secret_enc))
    return value


def add_notification_rule(
    session: Session, *, user: str, body: NotificationRuleCreate, actor: str
) -> NotificationRuleRead:
    owner = _user(session, user)
    cm = session.scalar(
        select(ContactMethodRow.id).where(
            ContactMethodRow.user_id == owner.id, ContactMethodRow.name == body.contact_method
        )
    )
    if cm is None:
        raise ValidationError(
            f"contact_method: user {user!r} has no contact method {body.contact_method!r}",
            field="contact_method",
        )
    row = NotificationRuleRow(user_id=owner.id, contact_method_id=cm, delay_s=body.delay_s)
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="notification_rule.create",
        target_type="user",
        target_id=owner.name,
        detail={"contact_method": body.contact_method, "delay_s": body.delay_s},
    )
    return NotificationRuleRead(
        id=row.id, user=owner.name, contact_method=body.contact_method, delay_s=body.delay_s
    )


def list_notification_rules(session: Session, *, user: str) -> list[NotificationRuleRead]:
    owner = _user(session, user)
    rows = session.execute(
        select(NotificationRuleRow, ContactMethodRow.name)
        .join(ContactMethodRow, NotificationRuleRow.contact_method_id == ContactMethodRow.id)
        .where(NotificationRuleRow.user_id == owner.id)
        .order_by(NotificationRuleRow.delay_s, NotificationRuleRow.id)
    )
    return [
        NotificationRuleRead(id=r.id, user=owner.name, contact_method=cm, delay_s=r.delay_s)
        for r, cm in rows
    ]


def rules_and_methods(
    session: Session, user_ids: Sequence[int]
) -> tuple[dict[int, list[NotificationRule]], dict[int, list[int]]]:
    """Notification rules and contact-method ids of ``user_ids`` (for one escalation step)."""
    rules: dict[int, list[NotificationRule]] = {}
    methods: dict[int, list[int]] = {}
    if not user_ids:
        return rules, methods
    for r in session.scalars(
        select(NotificationRuleRow).where(NotificationRuleRow.user_id.in_(user_ids))
    ):
        rules.setdefault(r.user_id, []).append(NotificationRule(r.contact_method_id, r.delay_s))
    for cm_id, uid in session.execute(
        select(ContactMethodRow.id, ContactMethodRow.user_id)
        .where(ContactMethodRow.user_id.in_(user_ids))
        .order_by(ContactMethodRow.id)
    ):
        methods.setdefault(uid, []).append(cm_id)
    return rules, methods


# -- schedules ---------------------------------------------------------------------------


def _schedule_row(session: Session, ref: str) -> OncallScheduleRow:
    query = select(OncallScheduleRow)
    query = query.where(
        OncallScheduleRow.id == int(ref) if ref.isdigit() else OncallScheduleRow.name == ref
    )
    row = session.scalars(query).one_or_none()
    if row is None:
        raise NotFoundError(f"on-call schedule {ref!r} not found")
    return row


def create_schedule(session: Session, body: ScheduleCreate, *, actor: str) -> ScheduleRead:
    if session.scalar(select(OncallScheduleRow.id).where(OncallScheduleRow.name == body.name)):
        raise ConflictError(f"on-call schedule {body.name!r} exists")
    layers: list[tuple[Layer, list[int]]] = []
    for i, layer in enumerate(body.layers):
        ids = [
            _user_id(session, name, field=f"layers[{i}].participants[{j}]")
            for j, name in enumerate(layer.participants)
        ]
        restrictions = tuple(
            Restriction(frozenset(r.days), r.start, r.end) for r in layer.restrictions
        )
        domain_layer = Layer(
            layer.name, layer.kind, layer.start, layer.length, tuple(ids), restrictions
        )
        layers.append((domain_layer, ids))
    Schedule(body.name, body.timezone, tuple(dl for dl, _ in layers)).validate()
    row = OncallScheduleRow(name=body.name, timezone=body.timezone, description=body.description)
    session.add(row)
    session.flush()
    for position, ((built, ids), spec) in enumerate(zip(layers, body.layers, strict=True)):
        layer_row = OncallLayerRow(
            schedule_id=row.id,
            position=position,
            name=built.name,
            kind=built.kind.value,
            start_local=built.start.isoformat(),
            length=built.length,
            restrictions=[
                {"days": sorted(r.days), "start": r.start.isoformat(), "end": r.end.isoformat()}
                for r in spec.restrictions
            ],
        )
        session.add(layer_row)
        session.flush()
        session.add_all(
            OncallLayerMemberRow(layer_id=layer_row.id, position=j, user_id=uid)
            for j, uid in enumerate(ids)
        )
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="oncall_schedule.create",
        target_type="oncall_schedule",
        target_id=row.id,
        detail={"name": body.name, "layers": len(layers)},
    )
    return get_schedule(session, str(row.id))


def delete_schedule(session: Session, ref: str, *, actor: str) -> None:
    row = _schedule_row(session, ref)
    used = [
        p.name
        for p in session.scalars(select(EscalationPolicyRow))
        if any(
            t.get("kind") == "schedule" and t.get("id") == row.id
            for step in p.steps
            for t in step.get("targets", [])
        )
    ]
    if used:
        raise ConflictError(
            f"on-call schedule {row.name!r} is used by escalation policies: {', '.join(used)}"
        )
    session.delete(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="oncall_schedule.delete",
        target_type="oncall_schedule",
        target_id=row.id,
        detail={"name": row.name},
    )


@dataclass(frozen=True, slots=True)
class LoadedSchedule:
    id: int
    name: str
    schedule: Schedule
    names: dict[int, str]


def load_schedule(session: Session, ref: str) -> LoadedSchedule:
    row = _schedule_row(session, ref)
    return _load(session, row)


def _load(session: Session, row: OncallScheduleRow) -> LoadedSchedule:
    layer_rows = list(
        session.scalars(
            select(OncallLayerRow)
            .where(OncallLayerRow.schedule_id == row.id)
            .order_by(OncallLayerRow.position)
        )
    )
    members: dict[int, list[int]] = {}
    if layer_rows:
        for m in session.scalars(
            select(OncallLayerMemberRow)
            .where(OncallLayerMemberRow.layer_id.in_([lr.id for lr in layer_rows]))
            .order_by(OncallLayerMemberRow.position)
        ):
            members.setdefault(m.layer_id, []).append(m.user_id)
    layers = tuple(
        Layer(
            lr.name,
            RotationKind(lr.kind),
            datetime.fromisoformat(lr.start_local),
            lr.length,
            tuple(members.get(lr.id, [])),
            tuple(
                Restriction(
                    frozenset(r["days"]),
                    time.fromisoformat(r["start"]),
                    time.fromisoformat(r["end"]),
                )
                for r in lr.restrictions
            ),
        )
        for lr in layer_rows
    )
    override_rows = list(
        session.scalars(
            select(OncallOverrideRow)
            .where(OncallOverrideRow.schedule_id == row.id)
            .order_by(OncallOverrideRow.starts_at)
        )
    )
    overrides = tuple(
        Override(o.user_id, o.starts_at, o.ends_at, o.replaces_user_id) for o in override_rows
    )
    ids = {u for layer in layers for u in layer.participants}
    ids |= {o.user_id for o in overrides} | {
        o.replaces_user_id for o in overrides if o.replaces_user_id is not None
    }
    return LoadedSchedule(
        row.id,
        row.name,
        Schedule(row.name, row.timezone, layers, overrides),
        _user_names(session, ids),
    )


def get_schedule(session: Session, ref: str) -> ScheduleRead:
    row = _schedule_row(session, ref)
    loaded = _load(session, row)
    names = loaded.names
    override_rows = session.scalars(
        select(OncallOverrideRow)
        .where(OncallOverrideRow.schedule_id == row.id)
        .order_by(OncallOverrideRow.starts_at)
    )
    layer_rows = session.scalars(
        select(OncallLayerRow)
        .where(OncallLayerRow.schedule_id == row.id)
        .order_by(OncallLayerRow.position)
    )
    return ScheduleRead(
        id=row.id,
        name=row.name,
        timezone=row.timezone,
        description=row.description,
        layers=[
            LayerRead(
                name=layer.name,
                kind=layer.kind,
                start=layer.start,
                length=layer.length,
                participants=[names.get(u, str(u)) for u in layer.participants],
                restrictions=lr.restrictions,
            )
            for layer, lr in zip(loaded.schedule.layers, layer_rows, strict=True)
        ],
        overrides=[
            OverrideRead(
                id=o.id,
                user=names.get(o.user_id, str(o.user_id)),
                replaces=names.get(o.replaces_user_id) if o.replaces_user_id else None,
                starts_at=o.starts_at,
                ends_at=o.ends_at,
            )
            for o in override_rows
        ],
    )


def list_schedules(session: Session) -> list[ScheduleRead]:
    ids = session.scalars(select(OncallScheduleRow.id).order_by(OncallScheduleRow.name))
    return [get_schedule(session, str(i)) for i in ids]


def all_schedules(session: Session) -> list[LoadedSchedule]:
    rows = session.scalars(select(OncallScheduleRow).order_by(OncallScheduleRow.name))
    return [_load(session, r) for r in rows]


def add_override(session: Session, ref: str, body: OverrideCreate, *, actor: str) -> OverrideRead:
    row = _schedule_row(session, ref)
    uid = _user_id(session, body.user, field="user")
    replaces = _user_id(session, body.replaces, field="replaces") if body.replaces else None
    existing = [
        Override(o.user_id, o.starts_at, o.ends_at)
        for o in session.scalars(
            select(OncallOverrideRow).where(OncallOverrideRow.schedule_id == row.id)
        )
    ]
    validate_overrides([*existing, Override(uid, body.starts_at, body.ends_at)])
    o = OncallOverrideRow(
        schedule_id=row.id,
        user_id=uid,
        replaces_user_id=replaces,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        created_by=actor,
    )
    session.add(o)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="oncall_override.create",
        target_type="oncall_schedule",
        target_id=row.id,
        detail={
            "user": body.user,
            "starts_at": body.starts_at.isoformat(),
            "ends_at": body.ends_at.isoformat(),
        },
    )
    return OverrideRead(
        id=o.id, user=body.user, replaces=body.replaces, starts_at=o.starts_at, ends_at=o.ends_at
    )


def remove_override(session: Session, ref: str, override_id: int, *, actor: str) -> None:
    row = _schedule_row(session, ref)
    result = session.execute(
        delete(OncallOverrideRow).where(
            OncallOverrideRow.id == override_id, OncallOverrideRow.schedule_id == row.id
        )
    )
    if not getattr(result, "rowcount", 0):
        raise NotFoundError(f"schedule {row.name!r} has no override {override_id}")
    audit.record(
        session,
        actor=actor,
        action="oncall_override.delete",
        target_type="oncall_schedule",
        target_id=row.id,
        detail={"override_id": override_id},
    )


def user_references(session: Session, user_id: int) -> list[str]:
    """What keeps a user from being deleted: the schedules and policies that name them."""
    names = set(
        session.scalars(
            select(OncallScheduleRow.name)
            .join(OncallLayerRow, OncallLayerRow.schedule_id == OncallScheduleRow.id)
            .join(OncallLayerMemberRow, OncallLayerMemberRow.layer_id == OncallLayerRow.id)
            .where(OncallLayerMemberRow.user_id == user_id)
        )
    )
    names |= set(
        session.scalars(
            select(OncallScheduleRow.name)
            .join(OncallOverrideRow, OncallOverrideRow.schedule_id == OncallScheduleRow.id)
            .where(OncallOverrideRow.user_id == user_id)
        )
    )
    out = [f"schedule {n}" for n in sorted(names)]
    for p in session.scalars(select(EscalationPolicyRow).order_by(EscalationPolicyRow.name)):
        if any(
            t.get("kind") == "user" and t.get("id") == user_id
            for step in p.steps
            for t in step.get("targets", [])
        ):
            out.append(f"escalation policy {p.name}")
    return out


# -- escalation policies -----------------------------------------------------------------


def _policy_row(session: Session, ref: str) -> EscalationPolicyRow:
    query = select(EscalationPolicyRow).where(
        EscalationPolicyRow.id == int(ref) if ref.isdigit() else EscalationPolicyRow.name == ref
    )
    row = session.scalars(query).one_or_none()
    if row is None:
        raise NotFoundError(f"escalation policy {ref!r} not found")
    return row


def create_policy(session: Session, body: PolicyCreate, *, actor: str) -> PolicyRead:
    if session.scalar(select(EscalationPolicyRow.id).where(EscalationPolicyRow.name == body.name)):
        raise ConflictError(f"escalation policy {body.name!r} exists")
    steps: list[dict[str, Any]] = []
    for i, step in enumerate(body.steps):
        targets = []
        for j, t in enumerate(step.targets):
            where = f"steps[{i}].targets[{j}]"
            if t.kind is TargetKind.user:
                tid = _user_id(session, t.ref, field=where)
            elif t.kind is TargetKind.team:
                found = session.scalar(select(OncallTeamRow.id).where(OncallTeamRow.name == t.ref))
                if found is None:
                    raise ValidationError(f"{where}: unknown team {t.ref!r}", field=where)
                tid = found
            else:
                try:
                    tid = _schedule_row(session, t.ref).id
                except NotFoundError as exc:
                    raise ValidationError(
                        f"{where}: unknown on-call schedule {t.ref!r}", field=where
                    ) from exc
            targets.append({"kind": t.kind.value, "id": tid, "name": t.ref})
        steps.append({"targets": targets, "delay_s": step.delay_s})
    row = EscalationPolicyRow(name=body.name, steps=steps, repeat=body.repeat)
    to_domain(row).validate()
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="escalation_policy.create",
        target_type="escalation_policy",
        target_id=row.id,
        detail={"name": body.name, "steps": len(steps), "repeat": body.repeat},
    )
    return PolicyRead(id=row.id, name=row.name, repeat=row.repeat, steps=row.steps)


def to_domain(row: EscalationPolicyRow) -> EscalationPolicy:
    return EscalationPolicy(
        row.name,
        tuple(
            EscalationStep(
                tuple(Target(TargetKind(t["kind"]), int(t["id"])) for t in s["targets"]),
                int(s["delay_s"]),
            )
            for s in row.steps
        ),
        row.repeat,
    )


def get_policy_row(session: Session, policy_id: int) -> EscalationPolicyRow | None:
    return session.get(EscalationPolicyRow, policy_id)


def list_policies(session: Session) -> list[PolicyRead]:
    return [
        PolicyRead(id=r.id, name=r.name, repeat=r.repeat, steps=r.steps)
        for r in session.scalars(select(EscalationPolicyRow).order_by(EscalationPolicyRow.name))
    ]


def delete_policy(session: Session, ref: str, *, actor: str) -> None:
    row = _policy_row(session, ref)
    routes = list(
        session.scalars(select(OncallRouteRow.name).where(OncallRouteRow.policy_id == row.id))
    )
    if routes:
        raise ConflictError(
            f"escalation policy {row.name!r} is used by routes: {', '.join(routes)}"
        )
    session.delete(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="escalation_policy.delete",
        target_type="escalation_policy",
        target_id=row.id,
        detail={"name": row.name},
    )


# -- routes and silences -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Route:
    id: int
    name: str
    matchers: tuple[Matcher, ...]
    policy_id: int | None
    group_by: tuple[str, ...]
    auto_resolve: bool


def create_route(session: Session, body: RouteCreate, *, actor: str) -> RouteRead:
    if session.scalar(select(OncallRouteRow.id).where(OncallRouteRow.name == body.name)):
        raise ConflictError(f"route {body.name!r} exists")
    policy_id = None
    if body.policy is not None:
        try:
            policy_id = _policy_row(session, body.policy).id
        except NotFoundError as exc:
            raise ValidationError(
                f"policy: unknown escalation policy {body.policy!r}", field="policy"
            ) from exc
    row = OncallRouteRow(
        name=body.name,
        position=body.position,
        matchers=body.matchers,
        policy_id=policy_id,
        group_by=body.group_by,
        auto_resolve=body.auto_resolve,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="oncall_route.create",
        target_type="oncall_route",
        target_id=row.id,
        detail={"name": body.name, "matchers": body.matchers, "policy": body.policy},
    )
    return _route_read(row, body.policy)


def _route_read(row: OncallRouteRow, policy: str | None) -> RouteRead:
    return RouteRead(
        id=row.id,
        name=row.name,
        position=row.position,
        matchers=row.matchers,
        policy=policy,
        group_by=row.group_by,
        auto_resolve=row.auto_resolve,
    )


def list_routes(session: Session) -> list[RouteRead]:
    rows = session.execute(
        select(OncallRouteRow, EscalationPolicyRow.name)
        .outerjoin(EscalationPolicyRow, OncallRouteRow.policy_id == EscalationPolicyRow.id)
        .order_by(OncallRouteRow.position, OncallRouteRow.id)
    )
    return [_route_read(r, p) for r, p in rows]


def delete_route(session: Session, name: str, *, actor: str) -> None:
    row = session.scalars(select(OncallRouteRow).where(OncallRouteRow.name == name)).one_or_none()
    if row is None:
        raise NotFoundError(f"route {name!r} not found")
    session.delete(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="oncall_route.delete",
        target_type="oncall_route",
        target_id=row.id,
        detail={"name": name},
    )


def routes(session: Session) -> list[Route]:
    """Routes in matching order (parsed; they were checked when written)."""
    rows = session.scalars(
        select(OncallRouteRow).order_by(OncallRouteRow.position, OncallRouteRow.id)
    )
    return [
        Route(
            r.id,
            r.name,
            parse_matchers(r.matchers),
            r.policy_id,
            tuple(r.group_by),
            r.auto_resolve,
        )
        for r in rows
    ]


def create_silence(session: Session, body: SilenceCreate, *, actor: str) -> SilenceRead:
    row = SilenceRow(
        matchers=body.matchers,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        comment=body.comment,
        created_by=actor,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="oncall_silence.create",
        target_type="oncall_silence",
        target_id=row.id,
        detail={"matchers": body.matchers, "ends_at": body.ends_at.isoformat()},
    )
    return SilenceRead.model_validate(row)


def list_silences(session: Session, *, active_at: datetime | None = None) -> list[SilenceRead]:
    query = select(SilenceRow).order_by(SilenceRow.starts_at)
    if active_at is not None:
        query = query.where(SilenceRow.starts_at <= active_at, SilenceRow.ends_at > active_at)
    return [SilenceRead.model_validate(r) for r in session.scalars(query)]


def delete_silence(session: Session, silence_id: int, *, actor: str) -> None:
    row = session.get(SilenceRow, silence_id)
    if row is None:
        raise NotFoundError(f"silence {silence_id} not found")
    session.delete(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="oncall_silence.delete",
        target_type="oncall_silence",
        target_id=silence_id,
    )


def active_silences(session: Session, now: datetime) -> list[tuple[int, tuple[Matcher, ...]]]:
    rows = session.scalars(
        select(SilenceRow).where(SilenceRow.starts_at <= now, SilenceRow.ends_at > now)
    )
    return [(r.id, parse_matchers(r.matchers)) for r in rows]
