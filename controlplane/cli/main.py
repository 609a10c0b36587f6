"""``cplane``: the entry point. It builds the settings once and turns every expected failure
(bad input, unreachable store, outdated schema) into one line on stderr and exit code 2."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Annotated

import pydantic
import typer

from controlplane.cli import agent
from controlplane.cli import alerts
from controlplane.cli import chaos
from controlplane.cli import dashboards
from controlplane.cli import db
from controlplane.cli import engines
from controlplane.cli import health_watch
from controlplane.cli import incidents
from controlplane.cli import jobs
from controlplane.cli import loadtest
from controlplane.cli import oncall
from controlplane.cli import prometheus
from controlplane.cli import quality
from controlplane.cli import rollouts
from controlplane.cli import schedules
from controlplane.cli import slos
from controlplane.cli import supervise
from controlplane.cli import teams
from controlplane.cli import tune
from controlplane.cli import users
from controlplane.cli.context import CliContext
from controlplane.cli.context import cli_context
from controlplane.domain import DomainError
from controlplane.settings import Settings

app = typer.Typer(
    name="cplane",
    help="Observability and autotuning control plane for LLM inference engines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(db.app, name="db")
engines.app.command("apply")(rollouts.apply)
engines.app.command("watch")(health_watch.watch)
engines.app.command("supervise")(supervise.supervise)
app.add_typer(engines.app, name="engine")
app.add_typer(rollouts.app, name="rollout")
app.add_typer(slos.app, name="slo")
app.add_typer(quality.app, name="quality")
app.add_typer(users.user_app, name="user")
app.add_typer(users.token_app, name="token")
app.add_typer(chaos.app, name="chaos")
app.add_typer(dashboards.app, name="dashboards")
app.command()(agent.agent)
app.command("tune")(tune.tune)
app.add_typer(tune.app, name="tuning")
app.command("loadtest")(loadtest.loadtest)
app.add_typer(loadtest.app, name="loadtests")
app.add_typer(schedules.app, name="schedule")
app.add_typer(jobs.app, name="jobs")
app.add_typer(alerts.app, name="alerts")
app.add_typer(prometheus.prometheus_app, name="prometheus")
app.add_typer(prometheus.alertmanager_app, name="alertmanager")
app.add_typer(incidents.app, name="incident")
app.add_typer(oncall.app, name="oncall")
app.add_typer(oncall.schedule_app, name="oncall-schedule")
app.add_typer(oncall.escalation_app, name="escalation")
app.add_typer(teams.app, name="team")
app.add_typer(oncall.notify_app, name="notify")


@app.callback()
def root(ctx: typer.Context) -> None:
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Alembic narrates every schema check at INFO; the commands print what matters.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # httpx logs every request at INFO: one line per scrape and per admin call.
    for client_logger in ("httpx", "httpcore"):
        logging.getLogger(client_logger).setLevel(settings.http_client_log_level)
    ctx.obj = CliContext(settings=settings)
    ctx.call_on_close(ctx.obj.close)


@app.command()
def up(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Default: CP_API__HOST.")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Default: CP_API__PORT.")] = (
        None
    ),
) -> None:
    """Serve the API (OpenAPI docs at /docs)."""
    import uvicorn

    from controlplane.api.app import create_app

    c = cli_context(ctx)
    application = create_app(c.settings, db_engine=c.engine())
    uvicorn.run(
        application,
        host=host or c.settings.api.host,
        port=port or c.settings.api.port,
        log_level=c.settings.log_level.lower(),
    )


def _one_line(exc: pydantic.ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "input"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def main(argv: Sequence[str] | None = None) -> None:
    command = typer.main.get_command(app)
    try:
        result = command.main(
            args=list(argv) if argv is not None else None,
            prog_name="cplane",
            standalone_mode=False,
        )
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("cplane: aborted", file=sys.stderr)
        sys.exit(1)
    except typer.TyperException as exc:
        # Usage errors (unknown command, bad option value): Typer's own message, one line.
        format_message = getattr(exc, "format_message", None)
        message = format_message() if callable(format_message) else str(exc)
        print(f"cplane: error: {message}", file=sys.stderr)
        sys.exit(2)
    except DomainError as exc:
        print(f"cplane: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except pydantic.ValidationError as exc:
        print(f"cplane: error: {_one_line(exc)}", file=sys.stderr)
        sys.exit(2)
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
