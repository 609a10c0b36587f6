from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from controlplane.cli.context import cli_actor
from controlplane.cli.context import cli_context
from controlplane.cli.ids import TokenId
from controlplane.cli.output import emit
from controlplane.domain import Role
from controlplane.schemas.users import TokenRead
from controlplane.schemas.users import UserRead
from controlplane.store import users
from controlplane.store.files import write_private

user_app = typer.Typer(help="Users and their roles.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)


@user_app.command("create")
def create_user(
    ctx: typer.Context,
    name: str,
    role: Annotated[Role, typer.Option(help="viewer < operator < admin.")] = Role.viewer,
    admin: Annotated[bool, typer.Option("--admin", help="Same as --role admin.")] = False,
) -> None:
    """Create a user (the first admin is made this way)."""
    with cli_context(ctx).session() as session:
        row = users.create_user(
            session, name=name, role=Role.admin if admin else role, actor=cli_actor()
        )
        print(f"created user {row.name} ({row.role}); next: cplane token create {row.name}")


@user_app.command("list")
def list_users(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """List users."""
    with cli_context(ctx).session() as session:
        rows = [UserRead.model_validate(r) for r in users.list_users(session)]
    emit(rows, columns=("id", "name", "role", "disabled", "created"), as_json=as_json)


@user_app.command("delete")
def delete_user(
    ctx: typer.Context,
    name: str,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
) -> None:
    """Delete a user (refused while they are on an on-call schedule or policy)."""
    if not yes:
        typer.confirm(f"delete user {name}?", abort=True)
    with cli_context(ctx).session() as session:
        users.delete_user(session, name=name, actor=cli_actor())
    print(f"deleted user {name}")


@user_app.command("disable")
def disable_user(ctx: typer.Context, name: str) -> None:
    """Disable a user: every token of theirs fails with 401 from now on."""
    with cli_context(ctx).session() as session:
        users.set_disabled(session, name=name, disabled=True, actor=cli_actor())
    print(f"disabled user {name}")


@user_app.command("enable")
def enable_user(ctx: typer.Context, name: str) -> None:
    """Enable a disabled user again (their unexpired, unrevoked tokens work again)."""
    with cli_context(ctx).session() as session:
        users.set_disabled(session, name=name, disabled=False, actor=cli_actor())
    print(f"enabled user {name}")


@user_app.command("role")
def set_role(ctx: typer.Context, name: str, role: Role) -> None:
    """Change a user's role (viewer < operator < admin)."""
    with cli_context(ctx).session() as session:
        row = users.set_role(session, name=name, role=role, actor=cli_actor())
    print(f"user {row.name} is now {row.role}")


@token_app.command("create")
def create_token(
    ctx: typer.Context,
    user: str,
    name: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
    ttl_days: Annotated[
        int | None, typer.Option(min=1, max=3650, help="Default: the CP_API__TOKEN_TTL_DAYS.")
    ] = None,
    no_expiry: Annotated[bool, typer.Option("--no-expiry", help="Never expires.")] = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write it to this file (0600) instead of stdout."),
    ] = None,
) -> None:
    """Create a token and print it once on stdout (it cannot be shown again)."""
    c = cli_context(ctx)
    days = ttl_days or c.settings.api.token_ttl_days
    with c.session() as session:
        owner = users.get_user(session, user)
        ttl = None if no_expiry else timedelta(days=days)
        _row, secret = users.create_token(
            session, user=owner, name=name, ttl=ttl, actor=cli_actor()
        )
    if output is None:
        print(secret)
        return
    write_private(output, secret + "\n")
    print(f"wrote the token for {owner.name} to {output}")


@token_app.command("list")
def list_tokens(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """List tokens (prefixes only; the secrets are not stored)."""
    with cli_context(ctx).session() as session:
        rows = [TokenRead.model_validate(r) for r in users.list_tokens(session)]
    cols = ("id", "user_id", "name", "prefix", "expires_at", "revoked_at", "last_used_at")
    emit(rows, columns=cols, as_json=as_json)


@token_app.command("revoke")
def revoke_token(ctx: typer.Context, token_id: TokenId) -> None:
    """Revoke a token by id; requests with it fail with 401 from now on."""
    with cli_context(ctx).session() as session:
        row = users.revoke_token(session, token_id=token_id, actor=cli_actor())
    print(f"revoked token {row.id} ({row.prefix}...)")
