"""Incidents over HTTP: viewers read them with their alerts, timeline and notifications;
operators acknowledge, resolve, snooze and annotate them. Every move is audited as the
caller."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter
from fastapi import Query
from fastapi import Request

from controlplane.api.deps import Operator
from controlplane.api.deps import SessionDep
from controlplane.api.deps import Viewer
from controlplane.api.deps import actor
from controlplane.api.params import RowId
from controlplane.domain.incidents import IncidentState
from controlplane.schemas.oncall import IncidentDetail
from controlplane.schemas.oncall import IncidentEventRead
from controlplane.schemas.oncall import IncidentRead
from controlplane.schemas.oncall import NoteIn
from controlplane.schemas.oncall import SnoozeIn
from controlplane.store import incidents
from controlplane.store.base import utcnow

router = APIRouter(prefix="/api/v1/incidents", tags=["Incidents"])


def observe_ack(request: Request, incident: IncidentRead) -> None:
    metrics = getattr(request.app.state, "oncall_metrics", None)
    if metrics is not None and incident.acknowledged_at is not None:
        waited = (incident.acknowledged_at - incident.triggered_at).total_seconds()
        metrics.time_to_ack.observe(max(0.0, waited))


@router.get("", response_model=list[IncidentRead])
def list_incidents(
    session: SessionDep,
    who: Viewer,
    state: Annotated[list[IncidentState] | None, Query(description="Repeatable.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[IncidentRead]:
    """Newest first."""
    with session.begin():
        return incidents.list_incidents(session, states=state or (), limit=limit)


@router.get("/{incident_id}", response_model=IncidentDetail)
def get_incident(
    incident_id: RowId,
    session: SessionDep,
    who: Viewer,
    before_minutes: Annotated[
        int,
        Query(
            ge=0,
            le=7 * 24 * 60,
            description="How long before the incident opened its rollouts and tuning runs "
            "are looked for.",
        ),
    ] = 30,
) -> IncidentDetail:
    with session.begin():
        return incidents.get_incident(
            session, incident_id, now=utcnow(), lead=timedelta(minutes=before_minutes)
        )


@router.post("/{incident_id}/ack", response_model=IncidentRead)
def acknowledge(
    incident_id: RowId, request: Request, session: SessionDep, who: Operator
) -> IncidentRead:
    """Stops the escalation; PagerDuty is told (same ``dedup_key``). Acknowledging an
    acknowledged incident changes nothing."""
    with session.begin():
        before = incidents.get_incident(session, incident_id).state
        done = incidents.acknowledge(session, incident_id, actor=actor(who), now=utcnow())
    if before is not IncidentState.acknowledged:
        observe_ack(request, done)
    return done


@router.post("/{incident_id}/resolve", response_model=IncidentRead)
def resolve(incident_id: RowId, session: SessionDep, who: Operator) -> IncidentRead:
    with session.begin():
        return incidents.resolve(session, incident_id, actor=actor(who), now=utcnow())


@router.post("/{incident_id}/snooze", response_model=IncidentRead)
def snooze(incident_id: RowId, body: SnoozeIn, session: SessionDep, who: Operator) -> IncidentRead:
    """Quiet until the time given; then it triggers again and escalation starts over."""
    with session.begin():
        return incidents.snooze(
            session, incident_id, minutes=body.minutes, actor=actor(who), now=utcnow()
        )


@router.post("/{incident_id}/notes", response_model=list[IncidentEventRead], status_code=201)
def add_note(
    incident_id: RowId, body: NoteIn, session: SessionDep, who: Operator
) -> list[IncidentEventRead]:
    """Adds a note to the timeline; returns the timeline."""
    with session.begin():
        incidents.add_note(session, incident_id, text=body.text, actor=actor(who), now=utcnow())
        return incidents.get_incident(session, incident_id).timeline
