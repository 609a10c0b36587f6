"""``cplane team``: teams an escalation step can page as a whole. Acts on the store
directly, audited as ``cli:<user>``."""

from __future__ import annotations

from typing import Annotated

import typer

from controlplane.cli.context import cli_actor
from controlplane.cli.context import cli_context
from controlplane.cli.output import emit
from controlplane.schemas.oncall import TeamCreate
from controlplane.store import teams

app = typer.Typer(help="Teams: page every member at once.", no_args_is_help=True)


@app.command("create")
def create(
    ctx: typer.Context,
    name: str,
    member: Annotated[list[str] | None, typer.Option(help="User name, repeatable.")] = None,
) -> None:
    body = TeamCreate(name=name, members=list(member or []))
    with cli_context(ctx).session() as session:
        made = teams.create_team(session, body, actor=cli_actor())
    print(f"created team {made.name} (id {made.id}): {', '.join(made.members) or 'no members'}")


@app.command("add")
def add(ctx: typer.Context, team: str, user: str) -> None:
    with cli_context(ctx).session() as session:
        teams.add_member(session, team, user, actor=cli_actor())
    print(f"{user} is in team {team}")


@app.command("remove")
def remove(ctx: typer.Context, team: str, user: str) -> None:
    with cli_context(ctx).session() as session:
        teams.remove_member(session, team, user, actor=cli_actor())
    print(f"{user} left team {team}")


@app.command("list")
def list_teams(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    with cli_context(ctx).session() as session:
        rows = teams.list_teams(session)
    emit(rows, columns=("id", "name", "members"), as_json=as_json)


@app.command("delete")
def delete(ctx: typer.Context, name: str) -> None:
    """Refused while an escalation policy pages the team (the message names them)."""
    with cli_context(ctx).session() as session:
        teams.delete_team(session, name, actor=cli_actor())
    print(f"deleted team {name}")
