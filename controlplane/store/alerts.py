"""Alerts in the store: the webhook's batched upsert, the control plane's own raise / resolve,
and the reads behind ``GET /alerts`` and ``cplane alerts``.

One delivery is one transaction and a fixed number of statements, however many alerts it
carries: one SELECT of the fingerprints it names, one of the engines its labels name, one
multi-row INSERT of new alerts, one executemany UPDATE of those seen again, one INSERT of the
events; only alerts that change state go one by one, through the lifecycle's compare-and-set
(each such move is audited). Delivering the same body twice changes nothing but
``last_received_at``: that is what makes Alertmanager's retries harmless.

Every alert that starts firing or resolves, through any of these functions, is handed to
``controlplane.store.incidents.alerts_changed`` in the same transaction, which groups it into
an incident (and writes the first page to the outbox) or resolves incidents it settles.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import TypeVar

from sqlalchemy import Table
from sqlalchemy import bindparam
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from controlplane.domain import ConflictError
from controlplane.domain import NotFoundError
from controlplane.domain.alerts import ALERT_LIFECYCLE
from controlplane.domain.alerts import AlertSource
from controlplane.domain.alerts import AlertState
from controlplane.schemas.alerts import AlertDetail
from controlplane.schemas.alerts import AlertEventRead
from controlplane.schemas.alerts import AlertmanagerWebhook
from controlplane.schemas.alerts import AlertRead
from controlplane.schemas.alerts import WebhookAlert
from controlplane.schemas.alerts import WebhookReceipt
from controlplane.store import audit
from controlplane.store import incidents
from controlplane.store.lifecycle import transition
from controlplane.store.models import AlertEventRow
from controlplane.store.models import AlertRow
from controlplane.store.models import EngineRow

ENGINE_LABEL = "engine"
T = TypeVar("T")
_CHUNK = 500  # bound parameters per IN (...): far below every backend's limit
ALERTS: Table = AlertRow.__table__  # type: ignore[assignment]


def _chunks(values: Sequence[T]) -> Iterable[Sequence[T]]:
    for i in range(0, len(values), _CHUNK):
        yield values[i : i + _CHUNK]


def _engine_ids(session: Session, names: set[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for chunk in _chunks(sorted(names)):
        rows = session.execute(
            select(EngineRow.name, EngineRow.id).where(EngineRow.name.in_(chunk))
        )
        out.update({name: engine_id for name, engine_id in rows})
    return out


def _excerpt(message: AlertmanagerWebhook, alert: WebhookAlert) -> dict[str, Any]:
    return {
        "receiver": message.receiver,
        "group_key": message.group_key,
        "notification_reason": message.notification_reason,
        "starts_at": alert.starts_at.isoformat(),
        "ends_at": alert.ended.isoformat() if alert.ended else None,
    }


@dataclass(frozen=True, slots=True)
class _Stored:
    """What a delivery compares with: the stored columns it may change (labels are part of
    the fingerprint, so they are not read)."""

    id: int
    state: str
    annotations: dict[str, Any]
    group_key: str | None
    starts_at: datetime
    ends_at: datetime | None
    generator_url: str | None


_STORED = (
    AlertRow.fingerprint,
    AlertRow.id,
    AlertRow.state,
    AlertRow.annotations,
    AlertRow.group_key,
    AlertRow.starts_at,
    AlertRow.ends_at,
    AlertRow.generator_url,
)


def _is_stale(row: _Stored, alert: WebhookAlert) -> bool:
    """A firing notification for an alert stored as resolved is a re-fire only if it started
    after the stored end; otherwise it is a retry of an older delivery."""
    if alert.status != AlertState.firing or row.state != AlertState.resolved.value:
        return False
    return alert.starts_at <= (row.ends_at or row.starts_at)


def _same(row: _Stored, columns: dict[str, Any]) -> bool:
    return all(getattr(row, k) == v for k, v in columns.items() if k not in ("last_received_at",))


def _move_many(
    session: Session,
    moves: list[dict[str, Any]],
    *,
    source: AlertState,
    to: AlertState,
    actor: str,
    group_key: str,
) -> None:
    """Compare-and-set many alerts from ``source`` to ``to`` in one executemany UPDATE, the
    move checked against the alert lifecycle once; one audit event for the batch.

    The batched form of ``controlplane.store.lifecycle.transition`` (same check, same
    ``WHERE state = <read>``): a delivery resolving a thousand alerts must not cost a thousand
    round trips.

    Raises:
        ConflictError: another writer moved one of the alerts first (the caller's
            transaction is rolled back; the webhook is retried by Alertmanager).
    """
    ALERT_LIFECYCLE.check(source, to)
    table = ALERTS
    stmt = (
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.state == source.value)
        .values(
            state=to.value,
            annotations=bindparam("b_annotations"),
            group_key=bindparam("b_group_key"),
            starts_at=bindparam("b_starts_at"),
            ends_at=bindparam("b_ends_at"),
            last_received_at=bindparam("b_last_received_at"),
            generator_url=bindparam("b_generator_url"),
            updated=bindparam("b_last_received_at"),
        )
    )
    result = session.connection().execute(
        stmt, [{f"b_{k}": v for k, v in m.items()} for m in moves]
    )
    if session.bind is not None and session.bind.dialect.supports_sane_multi_rowcount:
        if result.rowcount != len(moves):
            raise ConflictError(f"{len(moves) - result.rowcount} alert(s) moved by someone else")
    ids = [m["id"] for m in moves]
    audit.record(
        session,
        actor=actor,
        action=f"alert.{to.value}",
        target_type="alert_group",
        target_id=group_key[:128],
        detail={"from": source.value, "count": len(ids), "alert_ids": ids[:100]},
    )


def ingest_webhook(
    session: Session, message: AlertmanagerWebhook, *, actor: str, now: datetime
) -> WebhookReceipt:
    """Store one Alertmanager delivery (deduplicated by fingerprint; the last alert of a
    fingerprint repeated within the body wins)."""
    alerts = {a.fingerprint.lower(): a for a in message.alerts}
    existing: dict[str, _Stored] = {}
    for chunk in _chunks(list(alerts)):
        for stored in session.execute(select(*_STORED).where(AlertRow.fingerprint.in_(chunk))):
            existing[stored[0]] = _Stored(*stored[1:])
    engine_ids = _engine_ids(
        session, {a.labels[ENGINE_LABEL] for a in alerts.values() if ENGINE_LABEL in a.labels}
    )
    new: list[dict[str, Any]] = []
    touched: list[int] = []  # seen again, nothing but the time to write
    refreshed: list[dict[str, Any]] = []  # seen again with new annotations, ends_at ...
    moves: dict[tuple[AlertState, AlertState], list[dict[str, Any]]] = {}
    events: list[dict[str, Any]] = []
    stale = 0
    for fingerprint, alert in alerts.items():
        found = existing.get(fingerprint)
        columns: dict[str, Any] = {
            "annotations": alert.annotations,
            "group_key": message.group_key,
            "starts_at": alert.starts_at,
            "ends_at": alert.ended,
            "last_received_at": now,
            "generator_url": alert.generator_url or None,
        }
        if found is None:
            new.append(
                {
                    **columns,
                    "fingerprint": fingerprint,
                    "alertname": alert.labels.get("alertname") or "unnamed",
                    "engine_id": engine_ids.get(alert.labels.get(ENGINE_LABEL, "")),
                    "labels": alert.labels,
                    "state": alert.status.value,
                    "source": AlertSource.alertmanager.value,
                    "created": now,
                    "updated": now,
                }
            )
        elif _is_stale(found, alert):
            stale += 1
            touched.append(found.id)
        elif found.state == alert.status.value:
            if _same(found, columns):
                touched.append(found.id)
            else:
                refreshed.append({"b_id": found.id, **{f"b_{k}": v for k, v in columns.items()}})
        else:
            key = (AlertState(found.state), alert.status)
            moves.setdefault(key, []).append({"id": found.id, **columns})
            events.append(
                {
                    "alert_id": found.id,
                    "state": alert.status.value,
                    "at": now,
                    "payload": _excerpt(message, alert),
                }
            )
    fired: list[int] = []
    resolved: list[int] = []
    for (source, to), batch in moves.items():
        _move_many(session, batch, source=source, to=to, actor=actor, group_key=message.group_key)
        (fired if to is AlertState.firing else resolved).extend(m["id"] for m in batch)
    if new:
        ids = session.execute(
            insert(AlertRow).returning(
                AlertRow.id, AlertRow.fingerprint, sort_by_parameter_order=True
            ),
            new,
        ).all()
        for (alert_id, fingerprint), values in zip(ids, new, strict=True):
            if values["state"] == AlertState.firing.value:
                fired.append(alert_id)
            events.append(
                {
                    "alert_id": alert_id,
                    "state": values["state"],
                    "at": now,
                    "payload": _excerpt(message, alerts[fingerprint]),
                }
            )
    table = ALERTS
    for ids_chunk in _chunks(touched):
        session.connection().execute(
            update(table).where(table.c.id.in_(ids_chunk)).values(last_received_at=now)
        )
    if refreshed:
        session.connection().execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(
                **{k[2:]: bindparam(k) for k in refreshed[0] if k != "b_id"},
                updated=bindparam("b_last_received_at"),
            ),
            refreshed,
        )
    if events:
        session.execute(insert(AlertEventRow), events)
    changed = sum(len(batch) for batch in moves.values())
    incidents.alerts_changed(session, fired=fired, resolved=resolved, now=now, actor=actor)
    if new:
        audit.record(
            session,
            actor=actor,
            action="alerts.receive",
            target_type="alert_group",
            target_id=message.group_key[:128],
            detail={"receiver": message.receiver, "created": len(new)},
        )
    return WebhookReceipt(
        received=len(message.alerts),
        created=len(new),
        changed=changed,
        unchanged=len(touched) + len(refreshed) - stale,
        stale=stale,
    )


@dataclass(frozen=True, slots=True)
class RaisedAlert:
    """An alert the control plane raises itself (guard event, detector finding)."""

    fingerprint: str
    alertname: str
    source: AlertSource
    engine_id: int | None
    labels: dict[str, str]
    annotations: dict[str, str]


def get_by_fingerprint(session: Session, fingerprint: str) -> AlertRow | None:
    return session.scalars(
        select(AlertRow).where(AlertRow.fingerprint == fingerprint)
    ).one_or_none()


def raise_alert(session: Session, alert: RaisedAlert, *, actor: str, now: datetime) -> bool:
    """Fire ``alert`` (create it, or fire a resolved one again); True when it was not firing.
    An alert already firing only gets its annotations and ``last_received_at`` refreshed."""
    row = get_by_fingerprint(session, alert.fingerprint)
    excerpt = {"annotations": alert.annotations}
    if row is None:
        row = AlertRow(
            fingerprint=alert.fingerprint,
            alertname=alert.alertname,
            engine_id=alert.engine_id,
            labels=alert.labels,
            annotations=alert.annotations,
            state=AlertState.firing.value,
            source=alert.source.value,
            starts_at=now,
            last_received_at=now,
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="alert.firing",
            target_type="alert",
            target_id=row.id,
            detail={"fingerprint": alert.fingerprint, "alertname": alert.alertname},
        )
    elif row.state == AlertState.firing.value:
        row.annotations = alert.annotations
        row.last_received_at = now
        return False
    else:
        transition(
            session,
            row,
            AlertState.firing,
            lifecycle=ALERT_LIFECYCLE,
            actor=actor,
            values={
                "annotations": alert.annotations,
                "labels": alert.labels,
                "starts_at": now,
                "ends_at": None,
                "last_received_at": now,
            },
            detail={"fingerprint": alert.fingerprint, "alertname": alert.alertname},
        )
    session.add(
        AlertEventRow(alert_id=row.id, state=AlertState.firing.value, at=now, payload=excerpt)
    )
    session.flush()
    incidents.alerts_changed(session, fired=[row.id], resolved=[], now=now, actor=actor)
    return True


def resolve_alert(
    session: Session, row: AlertRow, *, actor: str, now: datetime, reason: str
) -> bool:
    """Resolve a firing alert; False (nothing done) when it is resolved already."""
    if row.state != AlertState.firing.value:
        return False
    transition(
        session,
        row,
        AlertState.resolved,
        lifecycle=ALERT_LIFECYCLE,
        actor=actor,
        values={"ends_at": now, "last_received_at": now},
        detail={"fingerprint": row.fingerprint, "reason": reason},
    )
    session.add(
        AlertEventRow(
            alert_id=row.id, state=AlertState.resolved.value, at=now, payload={"reason": reason}
        )
    )
    session.flush()
    incidents.alerts_changed(session, fired=[], resolved=[row.id], now=now, actor=actor)
    return True


def firing(
    session: Session, *, source: AlertSource, engine_id: int | None = None
) -> list[AlertRow]:
    query = select(AlertRow).where(
        AlertRow.source == source.value, AlertRow.state == AlertState.firing.value
    )
    if engine_id is not None:
        query = query.where(AlertRow.engine_id == engine_id)
    return list(session.scalars(query.order_by(AlertRow.id)))


def _read(row: AlertRow, engine: str | None) -> AlertRead:
    return AlertRead(
        id=row.id,
        fingerprint=row.fingerprint,
        alertname=row.alertname,
        status=AlertState(row.state),
        source=AlertSource(row.source),
        engine_id=row.engine_id,
        engine=engine,
        labels=row.labels,
        annotations=row.annotations,
        group_key=row.group_key,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        last_received_at=row.last_received_at,
        generator_url=row.generator_url,
        created=row.created,
        updated=row.updated,
    )


def list_alerts(
    session: Session,
    *,
    status: AlertState | None = None,
    engine_id: int | None = None,
    alertname: str | None = None,
    source: AlertSource | None = None,
    limit: int = 100,
) -> list[AlertRead]:
    """Newest first (by last change)."""
    query = select(AlertRow, EngineRow.name).outerjoin(
        EngineRow, AlertRow.engine_id == EngineRow.id
    )
    if status is not None:
        query = query.where(AlertRow.state == status.value)
    if engine_id is not None:
        query = query.where(AlertRow.engine_id == engine_id)
    if alertname is not None:
        query = query.where(AlertRow.alertname == alertname)
    if source is not None:
        query = query.where(AlertRow.source == source.value)
    query = query.order_by(AlertRow.updated.desc(), AlertRow.id.desc()).limit(limit)
    return [_read(row, name) for row, name in session.execute(query)]


def get_alert(session: Session, alert_id: int) -> AlertDetail:
    found = session.execute(
        select(AlertRow, EngineRow.name)
        .outerjoin(EngineRow, AlertRow.engine_id == EngineRow.id)
        .where(AlertRow.id == alert_id)
    ).one_or_none()
    if found is None:
        raise NotFoundError(f"alert {alert_id} not found")
    row, engine = found
    events = session.scalars(
        select(AlertEventRow).where(AlertEventRow.alert_id == alert_id).order_by(AlertEventRow.id)
    )
    return AlertDetail(
        **_read(row, engine).model_dump(),
        events=[
            AlertEventRead(status=AlertState(e.state), at=e.at, payload=e.payload) for e in events
        ],
    )
