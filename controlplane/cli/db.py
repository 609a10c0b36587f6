from __future__ import annotations

from typing import Annotated

import typer
from cryptography.fernet import MultiFernet

from controlplane.cli.context import cli_actor
from controlplane.cli.context import cli_context
from controlplane.store import audit
from controlplane.store import engines
from controlplane.store import oncall
from controlplane.store import schema
from controlplane.store.database import make_session_factory
from controlplane.store.database import secret_box
from controlplane.store.database import unit_of_work
from controlplane.store.secrets import rotate_keys

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


@app.command("rotate-key")
def rotate_key(ctx: typer.Context) -> None:
    """Re-encrypt every engine admin token and contact-method secret under a new key (all or
    none), then retire the old key. With CP_SECRET_KEY, put the new key first (NEW,OLD)
    before running it."""
    engine = cli_context(ctx).engine()
    box = secret_box(engine)
    factory = make_session_factory(engine)

    rotated = {"contacts": 0}

    def reencrypt(fernet: MultiFernet) -> int:
        with unit_of_work(factory) as session:

            def rotate(sealed: str) -> str:
                return fernet.rotate(sealed.encode()).decode()

            count = engines.reencrypt_tokens(session, rotate)
            contacts = oncall.reencrypt_secrets(session, rotate)
            audit.record(
                session,
                actor=cli_actor(),
                action="store.rotate_key",
                target_type="store",
                target_id="secret_key",
                detail={
                    "tokens": count,
                    "contact_methods": contacts,
                    "source": "env" if box.env_keys else "file",
                },
            )
            rotated["contacts"] = contacts
            return count

    count = rotate_keys(box, reencrypt)
    tail = "; remove the old keys from CP_SECRET_KEY" if box.env_keys else ""
    print(
        f"re-encrypted {count} engine admin token(s) and {rotated['contacts']} contact-method "
        f"secret(s) under a new key ({box.source}){tail}"
    )
