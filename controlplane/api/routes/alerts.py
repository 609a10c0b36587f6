"""Alerts over HTTP: Alertmanager's webhook in (operator: the token in
``alertmanager.yml``'s ``http_config``), and the stored alerts with their history out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Query
from sqlalchemy.exc import IntegrityError

from controlplane.api.deps import Operator
from controlplane.api.deps import SessionDep
from controlplane.api.deps import Viewer
from controlplane.api.deps import actor
from controlplane.api.params import RowId
from controlplane.domain.alerts import AlertSource
from controlplane.domain.alerts import AlertState
from controlplane.schemas.alerts import AlertDetail
from controlplane.schemas.alerts import AlertmanagerWebhook
from controlplane.schemas.alerts import AlertRead
from controlplane.schemas.alerts import WebhookReceipt
from controlplane.store import alerts
from controlplane.store import engines
from controlplane.store.base import utcnow

router = APIRouter(prefix="/api/v1/alerts", tags=["Alerts"])


@router.post("/alertmanager", response_model=WebhookReceipt)
def receive_alertmanager(
    body: AlertmanagerWebhook, session: SessionDep, who: Operator
) -> WebhookReceipt:
    """Alertmanager's webhook receiver (payload version 4). Idempotent: a retried delivery
    updates ``last_received_at`` and nothing else. A body that is not a v4 payload is refused
    with 422 and nothing of it is stored."""
    # Two deliveries naming the same new fingerprint at once: one inserts, the other hits the
    # unique index and runs again, now finding the row (so it updates it instead).
    for attempt in range(2):
        try:
            with session.begin():
                return alerts.ingest_webhook(session, body, actor=actor(who), now=utcnow())
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")


@router.get("", response_model=list[AlertRead])
def list_alerts(
    session: SessionDep,
    who: Viewer,
    status: Annotated[AlertState | None, Query(description="firing or resolved.")] = None,
    engine: Annotated[str | None, Query(description="Engine id or name.", max_length=100)] = None,
    alertname: Annotated[str | None, Query(max_length=200)] = None,
    source: Annotated[AlertSource | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AlertRead]:
    """Alerts, most recently changed first."""
    with session.begin():
        engine_id = engines.get_engine(session, engine).id if engine is not None else None
        return alerts.list_alerts(
            session,
            status=status,
            engine_id=engine_id,
            alertname=alertname,
            source=source,
            limit=limit,
        )


@router.get("/{alert_id}", response_model=AlertDetail)
def get_alert(alert_id: RowId, session: SessionDep, who: Viewer) -> AlertDetail:
    """One alert with its firing / resolved history."""
    with session.begin():
        return alerts.get_alert(session, alert_id)
