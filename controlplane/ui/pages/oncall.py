"""Incidents and on-call: open incidents on the alerts page (engine, severity, age, who was
paged), an incident with its timeline and the acknowledge / resolve / snooze / note moves,
who is on call now, a schedule's week with its overrides, and the escalation policies.

Every move calls the API's own route function, so the rules, the refusals, the audit entries
and the time-to-acknowledge metric are the API's; a viewer gets no button and a 403."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from typing import Annotated
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from fastapi import Query
from fastapi import Request
from fastapi.responses import RedirectResponse
from fastapi.responses import Response
from sqlalchemy.orm import Session

from controlplane.api.deps import SessionDep
from controlplane.api.params import OncallRef
from controlplane.api.params import RowId
from controlplane.api.routes import incidents as incidents_api
from controlplane.domain import ValidationError
from controlplane.domain.incidents import IncidentState
from controlplane.oncall.service import shifts
from controlplane.oncall.service import who_is_on_call
from controlplane.schemas.oncall import IncidentRead
from controlplane.schemas.oncall import NoteIn
from controlplane.schemas.oncall import ShiftRead
from controlplane.schemas.oncall import SnoozeIn
from controlplane.store import incidents
from controlplane.store import oncall
from controlplane.store.base import utcnow
from controlplane.ui.auth import UiOperator
from controlplane.ui.auth import UiUser
from controlplane.ui.auth import UiViewer
from controlplane.ui.forms import FormErrors
from controlplane.ui.forms import act
from controlplane.ui.forms import parse
from controlplane.ui.render import page

router = APIRouter(prefix="/ui", include_in_schema=False)

OPEN_STATES = (IncidentState.triggered, IncidentState.acknowledged, IncidentState.snoozed)
# The order open incidents are listed in: what still pages someone comes first.
_RANK = {IncidentState.triggered: 0, IncidentState.snoozed: 1, IncidentState.acknowledged: 2}


@dataclass(frozen=True)
class IncidentRow:
    incident: IncidentRead
    severity: str
    paged: list[str]


def incident_rows(
    session: Session, *, resolved_limit: int = 20
) -> tuple[list[IncidentRow], list[IncidentRow]]:
    """Open incidents (triggered first, then snoozed, then acknowledged; oldest first within
    each) and the most recently resolved ones, with who each one paged."""
    open_ = incidents.list_incidents(session, states=OPEN_STATES, limit=1000)
    open_.sort(key=lambda i: (_RANK.get(i.state, 3), i.triggered_at))
    done = incidents.list_incidents(session, states=[IncidentState.resolved], limit=resolved_limit)
    paged = incidents.paged_users(session, [i.id for i in (*open_, *done)])

    def rows(items: list[IncidentRead]) -> list[IncidentRow]:
        return [IncidentRow(i, i.labels.get("severity", ""), paged.get(i.id, [])) for i in items]

    return rows(open_), rows(done)


def _render_incident(
    request: Request,
    session: SessionDep,
    user: UiUser,
    incident_id: int,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    with session.begin():
        detail = incidents.get_incident(session, incident_id)
        paged = incidents.paged_users(session, [incident_id]).get(incident_id, [])
    return page(
        request,
        "incident.html",
        user,
        status_code=status_code,
        section="alerts",
        incident=detail,
        severity=detail.labels.get("severity", ""),
        paged=paged,
        is_open=detail.state is not IncidentState.resolved,
        errors=errors or {},
        form=form or {},
    )


@router.get("/alerts/incidents")
def incidents_live(request: Request, session: SessionDep, user: UiViewer) -> Response:
    """The alerts page's incident tables, polled by htmx: a page left open on a wall
    screen shows an incident open, get acknowledged and resolve without a reload."""
    with session.begin():
        open_incidents, resolved_incidents = incident_rows(session)
    return page(
        request,
        "fragments/incidents_live.html",
        user,
        open_incidents=open_incidents,
        resolved_incidents=resolved_incidents,
    )


@router.get("/incidents")
def incident_list(user: UiViewer) -> Response:
    """Incidents are listed with the alerts that make them."""
    return RedirectResponse("/ui/alerts", status_code=303)


@router.get("/incidents/{incident_id}")
def incident_page(
    request: Request, incident_id: RowId, session: SessionDep, user: UiViewer
) -> Response:
    return _render_incident(request, session, user, incident_id)


def _done(incident_id: int) -> Response:
    return RedirectResponse(f"/ui/incidents/{incident_id}", status_code=303)


@router.post("/incidents/{incident_id}/ack")
def acknowledge(
    request: Request, incident_id: RowId, session: SessionDep, user: UiOperator
) -> Response:
    try:
        act(
            lambda: incidents_api.acknowledge(
                incident_id=incident_id, request=request, session=session, who=user.principal
            )
        )
    except FormErrors as exc:
        return _render_incident(
            request, session, user, incident_id, errors=exc.errors, status_code=409
        )
    return _done(incident_id)


@router.post("/incidents/{incident_id}/resolve")
def resolve(
    request: Request, incident_id: RowId, session: SessionDep, user: UiOperator
) -> Response:
    try:
        act(
            lambda: incidents_api.resolve(
                incident_id=incident_id, session=session, who=user.principal
            )
        )
    except FormErrors as exc:
        return _render_incident(
            request, session, user, incident_id, errors=exc.errors, status_code=409
        )
    return _done(incident_id)


async def _form(request: Request) -> dict[str, str]:
    return {k: v for k, v in (await request.form()).items() if isinstance(v, str)}


@router.post("/incidents/{incident_id}/snooze")
async def snooze(
    request: Request, incident_id: RowId, session: SessionDep, user: UiOperator
) -> Response:
    form = await _form(request)
    try:
        body = parse(SnoozeIn, {"minutes": form.get("minutes", "")})
        act(
            lambda: incidents_api.snooze(
                incident_id=incident_id, body=body, session=session, who=user.principal
            ),
            default_field="minutes",
        )
    except FormErrors as exc:
        errors = {("minutes" if k == "incident" else k): v for k, v in exc.errors.items()}
        return _render_incident(
            request, session, user, incident_id, errors=errors, form=form, status_code=422
        )
    return _done(incident_id)


@router.post("/incidents/{incident_id}/notes")
async def add_note(
    request: Request, incident_id: RowId, session: SessionDep, user: UiOperator
) -> Response:
    form = await _form(request)
    try:
        body = parse(NoteIn, {"text": form.get("text", "").strip()})
        act(
            lambda: incidents_api.add_note(
                incident_id=incident_id, body=body, session=session, who=user.principal
            ),
            default_field="text",
        )
    except FormErrors as exc:
        return _render_incident(
            request, session, user, incident_id, errors=exc.errors, form=form, status_code=422
        )
    return RedirectResponse(f"/ui/incidents/{incident_id}#timeline", status_code=303)


# -- on-call ----------------------------------------------------------------------------------


@router.get("/oncall")
def oncall_page(request: Request, session: SessionDep, user: UiViewer) -> Response:
    now = utcnow()
    with session.begin():
        on_call = who_is_on_call(session, schedule=None, at=now)
        schedules = {s.name: s for s in oncall.list_schedules(session)}
        policies = oncall.list_policies(session)
        routes = oncall.list_routes(session)
    return page(
        request,
        "oncall.html",
        user,
        section="oncall",
        on_call=on_call,
        schedules=schedules,
        policies=policies,
        routes=routes,
    )


# Weeks a schedule can be shown for (the calendar's arithmetic stays in range).
FIRST_WEEK = date(1971, 1, 1)
LAST_WEEK = date(9000, 12, 31)


@dataclass(frozen=True)
class ShiftCell:
    user: str
    source: str
    starts: str  # wall clock in the schedule's zone, cut to the day
    ends: str


@dataclass(frozen=True)
class WeekDay:
    day: date
    cells: list[ShiftCell]


def _week(items: list[ShiftRead], monday: date, zone: ZoneInfo) -> list[WeekDay]:
    days = []
    for n in range(7):
        day = monday + timedelta(days=n)
        begin = datetime.combine(day, time(), zone)
        end = datetime.combine(day + timedelta(days=1), time(), zone)
        cells = [
            ShiftCell(
                s.user,
                s.source,
                max(s.starts_at, begin).astimezone(zone).strftime("%H:%M"),
                "24:00" if s.ends_at >= end else s.ends_at.astimezone(zone).strftime("%H:%M"),
            )
            for s in items
            if s.starts_at < end and s.ends_at > begin
        ]
        days.append(WeekDay(day, cells))
    return days


@router.get("/oncall/schedules/{ref}")
def schedule_page(
    request: Request,
    ref: OncallRef,
    session: SessionDep,
    user: UiViewer,
    week: Annotated[date | None, Query(description="Any day of the week to show.")] = None,
) -> Response:
    now = utcnow()
    if week is not None and not FIRST_WEEK <= week <= LAST_WEEK:
        raise ValidationError(f"week must be between {FIRST_WEEK} and {LAST_WEEK}", field="week")
    with session.begin():
        schedule = oncall.get_schedule(session, ref)
        zone = ZoneInfo(schedule.timezone)
        day = week or now.astimezone(zone).date()
        monday = day - timedelta(days=day.weekday())
        begin = datetime.combine(monday, time(), zone)
        end = datetime.combine(monday + timedelta(days=7), time(), zone)
        items = shifts(session, schedule.name, begin.astimezone(UTC), end.astimezone(UTC))
        current = who_is_on_call(session, schedule=schedule.name, at=now)
    ctx: dict[str, Any] = {
        "schedule": schedule,
        "days": _week(items, monday, zone),
        "monday": monday,
        "previous": monday - timedelta(days=7),
        "following": monday + timedelta(days=7),
        "current": current[0] if current else None,
        "today": now.astimezone(zone).date(),
    }
    return page(request, "schedule.html", user, section="oncall", **ctx)
