"""On-call configuration over HTTP: schedules (with overrides, shifts and "who is on call"),
escalation policies, routes, silences, and people's contact methods and notification rules.
Viewers read; admins edit; operators manage silences and send test pages. Audited."""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path
from fastapi import Query
from fastapi import Response
from pydantic import AwareDatetime

from controlplane.api.deps import Admin
from controlplane.api.deps import Operator
from controlplane.api.deps import SessionDep
from controlplane.api.deps import Viewer
from controlplane.api.deps import actor
from controlplane.api.params import OncallRef
from controlplane.api.params import RowId
from controlplane.oncall.ical import schedule_feed
from controlplane.oncall.service import send_test_pages
from controlplane.oncall.service import shifts
from controlplane.oncall.service import who_is_on_call
from controlplane.schemas.oncall import ContactMethodCreate
from controlplane.schemas.oncall import ContactMethodRead
from controlplane.schemas.oncall import NotificationRuleCreate
from controlplane.schemas.oncall import NotificationRuleRead
from controlplane.schemas.oncall import OnCallRead
from controlplane.schemas.oncall import OverrideCreate
from controlplane.schemas.oncall import OverrideRead
from controlplane.schemas.oncall import PolicyCreate
from controlplane.schemas.oncall import PolicyRead
from controlplane.schemas.oncall import RouteCreate
from controlplane.schemas.oncall import RouteRead
from controlplane.schemas.oncall import ScheduleCreate
from controlplane.schemas.oncall import ScheduleRead
from controlplane.schemas.oncall import ShiftRead
from controlplane.schemas.oncall import SilenceCreate
from controlplane.schemas.oncall import SilenceRead
from controlplane.schemas.oncall import TeamCreate
from controlplane.schemas.oncall import TeamRead
from controlplane.store import oncall
from controlplane.store import teams
from controlplane.store.base import utcnow

router = APIRouter(prefix="/api/v1/oncall", tags=["On-call"])

UserName = Annotated[
    str, Path(description="User name.", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
]


@router.get("/schedules", response_model=list[ScheduleRead])
def list_schedules(session: SessionDep, who: Viewer) -> list[ScheduleRead]:
    with session.begin():
        return oncall.list_schedules(session)


@router.post("/schedules", response_model=ScheduleRead, status_code=201)
def create_schedule(body: ScheduleCreate, session: SessionDep, who: Admin) -> ScheduleRead:
    with session.begin():
        return oncall.create_schedule(session, body, actor=actor(who))


@router.get("/schedules/{ref}", response_model=ScheduleRead)
def get_schedule(ref: OncallRef, session: SessionDep, who: Viewer) -> ScheduleRead:
    with session.begin():
        return oncall.get_schedule(session, ref)


@router.delete("/schedules/{ref}", status_code=204)
def delete_schedule(ref: OncallRef, session: SessionDep, who: Admin) -> Response:
    with session.begin():
        oncall.delete_schedule(session, ref, actor=actor(who))
    return Response(status_code=204)


@router.post("/schedules/{ref}/overrides", response_model=OverrideRead, status_code=201)
def add_override(
    ref: OncallRef, body: OverrideCreate, session: SessionDep, who: Admin
) -> OverrideRead:
    """Overlapping another override of the schedule, or ending before it starts: 422."""
    with session.begin():
        return oncall.add_override(session, ref, body, actor=actor(who))


@router.delete("/schedules/{ref}/overrides/{override_id}", status_code=204)
def remove_override(
    ref: OncallRef, override_id: RowId, session: SessionDep, who: Admin
) -> Response:
    with session.begin():
        oncall.remove_override(session, ref, override_id, actor=actor(who))
    return Response(status_code=204)


@router.get("/schedules/{ref}/shifts", response_model=list[ShiftRead])
def list_shifts(
    ref: OncallRef,
    session: SessionDep,
    who: Viewer,
    start: Annotated[AwareDatetime | None, Query()] = None,
    days: Annotated[int, Query(ge=1, le=90)] = 14,
) -> list[ShiftRead]:
    """Who is on call from ``start`` (default now) for ``days`` days."""
    begin = start or utcnow()
    with session.begin():
        return shifts(session, ref, begin, begin + timedelta(days=days))


@router.get(
    "/schedules/{ref}/ical",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}}},
)
def schedule_ical(
    ref: OncallRef,
    session: SessionDep,
    who: Viewer,
    days: Annotated[int, Query(ge=1, le=90)] = 30,
) -> Response:
    """The next ``days`` of shifts as an iCalendar feed."""
    now = utcnow()
    with session.begin():
        name = oncall.get_schedule(session, ref).name
        upcoming = shifts(session, ref, now, now + timedelta(days=days))
    body = schedule_feed(name, upcoming, now=now)
    return Response(body, media_type="text/calendar")


@router.get("/who", response_model=list[OnCallRead])
def who_is_on(
    session: SessionDep,
    who: Viewer,
    schedule: Annotated[str | None, Query(max_length=100)] = None,
    at: Annotated[AwareDatetime | None, Query(description="Default: now.")] = None,
) -> list[OnCallRead]:
    when: datetime = at or utcnow()
    with session.begin():
        return who_is_on_call(session, schedule=schedule, at=when)


@router.get("/policies", response_model=list[PolicyRead])
def list_policies(session: SessionDep, who: Viewer) -> list[PolicyRead]:
    with session.begin():
        return oncall.list_policies(session)


@router.post("/policies", response_model=PolicyRead, status_code=201)
def create_policy(body: PolicyCreate, session: SessionDep, who: Admin) -> PolicyRead:
    """Unknown users or schedules in a step: 422 naming the step and target."""
    with session.begin():
        return oncall.create_policy(session, body, actor=actor(who))


@router.delete("/policies/{ref}", status_code=204)
def delete_policy(ref: OncallRef, session: SessionDep, who: Admin) -> Response:
    with session.begin():
        oncall.delete_policy(session, ref, actor=actor(who))
    return Response(status_code=204)


@router.get("/teams", response_model=list[TeamRead])
def list_teams(session: SessionDep, who: Viewer) -> list[TeamRead]:
    with session.begin():
        return teams.list_teams(session)


@router.post("/teams", response_model=TeamRead, status_code=201)
def create_team(body: TeamCreate, session: SessionDep, who: Admin) -> TeamRead:
    """Unknown members: 422 naming ``members[i]``."""
    with session.begin():
        return teams.create_team(session, body, actor=actor(who))


@router.get("/teams/{ref}", response_model=TeamRead)
def get_team(ref: OncallRef, session: SessionDep, who: Viewer) -> TeamRead:
    with session.begin():
        return teams.get_team(session, ref)


@router.put("/teams/{ref}/members/{name}", response_model=TeamRead)
def add_team_member(ref: OncallRef, name: UserName, session: SessionDep, who: Admin) -> TeamRead:
    with session.begin():
        return teams.add_member(session, ref, name, actor=actor(who))


@router.delete("/teams/{ref}/members/{name}", response_model=TeamRead)
def remove_team_member(
    ref: OncallRef, name: UserName, session: SessionDep, who: Admin
) -> TeamRead:
    with session.begin():
        return teams.remove_member(session, ref, name, actor=actor(who))


@router.delete("/teams/{ref}", status_code=204)
def delete_team(ref: OncallRef, session: SessionDep, who: Admin) -> Response:
    """Refused (409) while an escalation policy pages the team, naming the policies."""
    with session.begin():
        teams.delete_team(session, ref, actor=actor(who))
    return Response(status_code=204)


@router.get("/routes", response_model=list[RouteRead])
def list_routes(session: SessionDep, who: Viewer) -> list[RouteRead]:
    with session.begin():
        return oncall.list_routes(session)


@router.post("/routes", response_model=RouteRead, status_code=201)
def create_route(body: RouteCreate, session: SessionDep, who: Admin) -> RouteRead:
    with session.begin():
        return oncall.create_route(session, body, actor=actor(who))


@router.delete("/routes/{name}", status_code=204)
def delete_route(
    name: Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z][\w.-]*$")],
    session: SessionDep,
    who: Admin,
) -> Response:
    with session.begin():
        oncall.delete_route(session, name, actor=actor(who))
    return Response(status_code=204)


@router.get("/silences", response_model=list[SilenceRead])
def list_silences(
    session: SessionDep, who: Viewer, active: Annotated[bool, Query()] = False
) -> list[SilenceRead]:
    with session.begin():
        return oncall.list_silences(session, active_at=utcnow() if active else None)


@router.post("/silences", response_model=SilenceRead, status_code=201)
def create_silence(body: SilenceCreate, session: SessionDep, who: Operator) -> SilenceRead:
    """A maintenance window (no matchers) or a silence: matching pages are recorded as
    suppressed instead of sent."""
    with session.begin():
        return oncall.create_silence(session, body, actor=actor(who))


@router.delete("/silences/{silence_id}", status_code=204)
def delete_silence(silence_id: RowId, session: SessionDep, who: Operator) -> Response:
    with session.begin():
        oncall.delete_silence(session, silence_id, actor=actor(who))
    return Response(status_code=204)


@router.get("/users/{name}/contact-methods", response_model=list[ContactMethodRead])
def list_contact_methods(
    name: UserName, session: SessionDep, who: Viewer
) -> list[ContactMethodRead]:
    """Addresses only; secrets (webhook URLs, integration keys) are never returned."""
    with session.begin():
        return oncall.list_contact_methods(session, user=name)


@router.post("/users/{name}/contact-methods", response_model=ContactMethodRead, status_code=201)
def add_contact_method(
    name: UserName, body: ContactMethodCreate, session: SessionDep, who: Admin
) -> ContactMethodRead:
    with session.begin():
        return oncall.add_contact_method(session, user=name, body=body, actor=actor(who))


@router.get("/users/{name}/notification-rules", response_model=list[NotificationRuleRead])
def list_rules(name: UserName, session: SessionDep, who: Viewer) -> list[NotificationRuleRead]:
    with session.begin():
        return oncall.list_notification_rules(session, user=name)


@router.post(
    "/users/{name}/notification-rules", response_model=NotificationRuleRead, status_code=201
)
def add_rule(
    name: UserName, body: NotificationRuleCreate, session: SessionDep, who: Admin
) -> NotificationRuleRead:
    with session.begin():
        return oncall.add_notification_rule(session, user=name, body=body, actor=actor(who))


@router.post("/users/{name}/test", status_code=202)
def test_pages(name: UserName, session: SessionDep, who: Operator) -> dict[str, int]:
    """Queues a test page to each of the person's contact methods (sent by the leader)."""
    with session.begin():
        return {"queued": send_test_pages(session, user=name, actor=actor(who), now=utcnow())}
