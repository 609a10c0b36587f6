"""On-call teams: a step of an escalation policy may page every member of one.

Members are existing users. Deleting a user takes them out of their teams (the foreign key
cascades): a team pages whoever is in it, so unlike a schedule it has no slot left empty.
Deleting a team an escalation policy names is refused, naming the policies, so a step never
points at nothing.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.domain import ConflictError
from controlplane.domain import NotFoundError
from controlplane.domain import ValidationError
from controlplane.schemas.oncall import TeamCreate
from controlplane.schemas.oncall import TeamRead
from controlplane.store import audit
from controlplane.store.models import EscalationPolicyRow
from controlplane.store.models import OncallTeamMemberRow
from controlplane.store.models import OncallTeamRow
from controlplane.store.models import UserRow


def _team(session: Session, ref: str) -> OncallTeamRow:
    """By id or name (a name starts with a letter)."""
    where = OncallTeamRow.id == int(ref) if ref.isdigit() else OncallTeamRow.name == ref
    row = session.scalars(select(OncallTeamRow).where(where)).one_or_none()
    if row is None:
        raise NotFoundError(f"team {ref!r} not found")
    return row


def _user_id(session: Session, name: str, *, field: str) -> int:
    found = session.scalar(select(UserRow.id).where(UserRow.name == name))
    if found is None:
        raise ValidationError(f"{field}: unknown user {name!r}", field=field)
    return found


def _read(session: Session, row: OncallTeamRow) -> TeamRead:
    names = session.scalars(
        select(UserRow.name)
        .join(OncallTeamMemberRow, OncallTeamMemberRow.user_id == UserRow.id)
        .where(OncallTeamMemberRow.team_id == row.id)
        .order_by(UserRow.name)
    )
    return TeamRead(id=row.id, name=row.name, members=list(names))


def _audit(session: Session, action: str, row: OncallTeamRow, actor: str, **detail: str) -> None:
    audit.record(
        session,
        actor=actor,
        action=f"team.{action}",
        target_type="team",
        target_id=row.id,
        detail={"name": row.name, **detail},
    )


def create_team(session: Session, body: TeamCreate, *, actor: str) -> TeamRead:
    """Raises ValidationError naming ``members[i]`` for an unknown user."""
    if session.scalar(select(OncallTeamRow.id).where(OncallTeamRow.name == body.name)):
        raise ConflictError(f"team {body.name!r} exists")
    ids = [_user_id(session, n, field=f"members[{i}]") for i, n in enumerate(body.members)]
    row = OncallTeamRow(name=body.name)
    session.add(row)
    session.flush()
    for uid in dict.fromkeys(ids):
        session.add(OncallTeamMemberRow(team_id=row.id, user_id=uid))
    session.flush()
    _audit(session, "create", row, actor, members=",".join(body.members))
    return _read(session, row)


def add_member(session: Session, team: str, user: str, *, actor: str) -> TeamRead:
    row = _team(session, team)
    uid = _user_id(session, user, field="user")
    known = session.get(OncallTeamMemberRow, (row.id, uid))
    if known is None:
        session.add(OncallTeamMemberRow(team_id=row.id, user_id=uid))
        session.flush()
        _audit(session, "add_member", row, actor, user=user)
    return _read(session, row)


def remove_member(session: Session, team: str, user: str, *, actor: str) -> TeamRead:
    row = _team(session, team)
    uid = _user_id(session, user, field="user")
    if session.get(OncallTeamMemberRow, (row.id, uid)) is None:
        raise NotFoundError(f"{user!r} is not in team {team!r}")
    session.execute(
        delete(OncallTeamMemberRow).where(
            OncallTeamMemberRow.team_id == row.id, OncallTeamMemberRow.user_id == uid
        )
    )
    session.expire_all()
    _audit(session, "remove_member", row, actor, user=user)
    return _read(session, row)


def list_teams(session: Session) -> list[TeamRead]:
    rows = session.scalars(select(OncallTeamRow).order_by(OncallTeamRow.name))
    return [_read(session, r) for r in rows]


def get_team(session: Session, name: str) -> TeamRead:
    return _read(session, _team(session, name))


def policies_naming(session: Session, team_id: int) -> list[str]:
    return [
        p.name
        for p in session.scalars(select(EscalationPolicyRow).order_by(EscalationPolicyRow.name))
        if any(
            t.get("kind") == "team" and t.get("id") == team_id
            for step in p.steps
            for t in step.get("targets", [])
        )
    ]


def delete_team(session: Session, ref: str, *, actor: str) -> None:
    """Raises ConflictError naming the escalation policies that page the team."""
    row = _team(session, ref)
    used = policies_naming(session, row.id)
    if used:
        raise ConflictError(
            f"team {row.name!r} is paged by escalation policies: {', '.join(used)}"
        )
    session.execute(delete(OncallTeamMemberRow).where(OncallTeamMemberRow.team_id == row.id))
    session.execute(delete(OncallTeamRow).where(OncallTeamRow.id == row.id))
    session.expunge(row)
    _audit(session, "delete", row, actor)


def member_ids(session: Session, team_id: int) -> list[int]:
    return list(
        session.scalars(
            select(OncallTeamMemberRow.user_id)
            .where(OncallTeamMemberRow.team_id == team_id)
            .order_by(OncallTeamMemberRow.user_id)
        )
    )
