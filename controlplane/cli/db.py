from __future__ import annotations

from typing import Annotated

import typer

from controlplane.cli.context import cli_context
from controlplane.store import schema

app = typer.Typer(help="The SQL store's schema.", no_args_is_help=True)


@app.command()
def upgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
    sql: Annotated[
        bool, typer.Option("--sql", help="Print the SQL instead of running it.")
    ] = False,
) -> None:
    """Migrate the store to the code's schema (safe to run again)."""
    c = cli_context(ctx)
    engine = c.engine(check_schema=False)
    if sql:
        print(schema.upgrade_sql(engine, revision), end="")
        return
    before = schema.current_revision(engine)
    schema.upgrade(engine, revision)
    after = schema.current_revision(engine)
    url = engine.url.render_as_string(hide_password=True)
    print(f"{url}: {before or 'empty'} -> {after}")


@app.command()
def current(ctx: typer.Context) -> None:
    """Print the store's revision and the code's head."""
    engine = cli_context(ctx).engine(check_schema=False)
    now, head = schema.current_revision(engine), schema.head_revision()
    state = "current" if now == head else "outdated: run `cplane db upgrade`"
    print(f"{now or 'empty'} (head {head}, {state})")
