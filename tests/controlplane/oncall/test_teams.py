"""A team target pages every member at once; an unknown team in a policy is refused naming
the target; a team a policy pages cannot be deleted (the policies are named); deleting a
user takes them out of their teams."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.domain import ConflictError
from controlplane.domain import NotFoundError
from controlplane.domain import ValidationError
from controlplane.schemas.oncall import PolicyCreate
from controlplane.schemas.oncall import RouteCreate
from controlplane.schemas.oncall import TeamCreate
from controlplane.store import audit
from controlplane.store import incidents
from controlplane.store import oncall
from controlplane.store import teams
from controlplane.store import users
from controlplane.store.models import NotificationRow
from controlplane.store.models import UserRow
from tests.controlplane.oncall.builders import deliver
from tests.controlplane.oncall.builders import person
from tests.controlplane.oncall.builders import webhook_alert

NOW = datetime(2026, 12, 1, 12, 0, 5, tzinfo=UTC)


def _policy(team: str) -> PolicyCreate:
    return PolicyCreate.model_validate(
        {"name": "sre", "steps": [{"targets": [{"kind": "team", "ref": team}], "delay_s": 300}]}
    )


@pytest.fixture
def team(session: Session) -> Session:
    with session.begin():
        for name in ("alice", "bob", "carol"):
            person(session, name)
        teams.create_team(session, TeamCreate(name="sre", members=["alice", "bob"]), actor="t")
    return session


def test_a_team_step_pages_every_member(team: Session) -> None:
    session = team
    with session.begin():
        teams.add_member(session, "sre", "carol", actor="t")
        teams.remove_member(session, "sre", "bob", actor="t")
        oncall.create_policy(session, _policy("sre"), actor="t")
        oncall.create_route(session, RouteCreate(name="all", policy="sre"), actor="t")
    deliver(session, webhook_alert("a1"), now=NOW)
    with session.begin():
        paged = session.scalars(
            select(UserRow.name)
            .join(NotificationRow, NotificationRow.user_id == UserRow.id)
            .distinct()
            .order_by(UserRow.name)
        )
        assert list(paged) == ["alice", "carol"]
        (incident,) = incidents.list_incidents(session)
        ids = {n: i for n, i in session.execute(select(UserRow.name, UserRow.id))}
        targets = [
            t
            for e in incidents.get_incident(session, incident.id).timeline
            for t in e.detail.get("targets", [])
        ]
        assert [t["members"] for t in targets] == [[ids["alice"], ids["carol"]]]
        actions = [e.action for e in audit.list_events(session, limit=50)]
    assert {"team.create", "team.add_member", "team.remove_member"} <= set(actions)


def test_unknown_teams_and_members_are_refused_naming_the_field(team: Session) -> None:
    session = team
    with session.begin():
        with pytest.raises(ValidationError, match=r"steps\[0\]\.targets\[0\]: unknown team"):
            oncall.create_policy(session, _policy("dba"), actor="t")
        with pytest.raises(ValidationError, match=r"members\[1\]"):
            teams.create_team(
                session, TeamCreate(name="dba", members=["alice", "nobody"]), actor="t"
            )
        with pytest.raises(NotFoundError):
            teams.add_member(session, "dba", "alice", actor="t")


def test_deleting_a_paged_team_is_refused_and_a_deleted_user_leaves_it(team: Session) -> None:
    session = team
    with session.begin():
        oncall.create_policy(session, _policy("sre"), actor="t")
    with session.begin(), pytest.raises(ConflictError, match="escalation policies: sre"):
        teams.delete_team(session, "sre", actor="t")
    with session.begin():
        users.delete_user(session, name="bob", actor="t")
    with session.begin():
        assert teams.get_team(session, "sre").members == ["alice"]
        oncall.delete_policy(session, "sre", actor="t")
        teams.delete_team(session, "sre", actor="t")
        assert teams.list_teams(session) == []
