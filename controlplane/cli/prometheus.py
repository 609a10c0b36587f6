"""``cplane prometheus`` and ``cplane alertmanager``: configuration files that wire both
to the control plane, and the SLO burn-rate rule file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

import controlplane
from controlplane.cli.context import cli_context
from controlplane.domain import ValidationError
from controlplane.prometheus import AlertmanagerConfig
from controlplane.prometheus import PrometheusConfig
from controlplane.prometheus import current_rules
from controlplane.prometheus import write_rules
from controlplane.settings import Settings

prometheus_app = typer.Typer(
    help="Prometheus: configuration, SLO burn-rate rules.", no_args_is_help=True
)
alertmanager_app = typer.Typer(help="Alertmanager: configuration.", no_args_is_help=True)

# The rule files shipped beside the package (a source checkout or an editable install).
SHIPPED_ALERTS = Path(controlplane.__file__).resolve().parent.parent / "alerts"

Url = Annotated[
    str | None, typer.Option(help="Control plane URL as Prometheus reaches it. Default: API.")
]
TokenFile = Annotated[
    Path | None,
    typer.Option(
        help="File holding the bearer token (mode 0600). Default: <data_dir>/prometheus/token."
    ),
]


def _url(settings: Settings, url: str | None) -> str:
    if url:
        return url
    # A wildcard bind address is no address to connect to; on the same host it is loopback.
    host = settings.api.host
    host = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else host
    return f"http://{host}:{settings.api.port}"


def _token_file(settings: Settings, token_file: Path | None) -> Path:
    return (token_file or settings.data_dir / "prometheus" / "token").resolve()


def _emit(text: str, token_file: Path, role: str) -> None:
    sys.stdout.write(text)
    if not token_file.exists():
        print(
            f"cplane: note: {token_file} does not exist yet; create it with "
            f"`cplane token create <{role}-user> > {token_file} && chmod 600 {token_file}`",
            file=sys.stderr,
        )


@prometheus_app.command("config")
def prometheus_config(
    ctx: typer.Context,
    url: Url = None,
    token_file: TokenFile = None,
    alerts_dir: Annotated[
        Path | None, typer.Option(help="Shipped rule files (*.rules.yml). Default: alerts/.")
    ] = None,
    rules_file: Annotated[
        Path | None, typer.Option(help="SLO rule file. Default: CP_PROMETHEUS__RULES_FILE.")
    ] = None,
    alertmanager: Annotated[str, typer.Option(help="Alertmanager URL.")] = (
        "http://127.0.0.1:9093"
    ),
    scrape_interval: Annotated[str, typer.Option(help="e.g. 15s.")] = "15s",
    evaluation_interval: Annotated[str, typer.Option(help="e.g. 15s.")] = "15s",
    sd_refresh_interval: Annotated[str, typer.Option(help="Target list refresh.")] = "30s",
) -> None:
    """Print a prometheus.yml: scrape the control plane, discover its engines, load the
    shipped and generated rules, alert to Alertmanager."""
    settings = cli_context(ctx).settings
    shipped = (alerts_dir or SHIPPED_ALERTS).resolve()
    if not shipped.is_dir():
        raise ValidationError(f"--alerts-dir {shipped} is not a directory", field="alerts_dir")
    slo_rules = (rules_file or settings.prometheus_rules_file).resolve()
    token = _token_file(settings, token_file)
    config = PrometheusConfig(
        control_plane_url=_url(settings, url),
        token_file=str(token),
        rule_files=[str(shipped / "*.rules.yml"), str(slo_rules)],
        alertmanager_url=alertmanager,
        scrape_interval=scrape_interval,
        evaluation_interval=evaluation_interval,
        sd_refresh_interval=sd_refresh_interval,
    )
    _emit(config.render(), token, "viewer")


@prometheus_app.command("rules")
def prometheus_rules(
    ctx: typer.Context,
    out: Annotated[
        str | None,
        typer.Option(
            help="File to write; '-' prints instead. Default: CP_PROMETHEUS__RULES_FILE."
        ),
    ] = None,
) -> None:
    """Write the SLO burn-rate rules of every engine, checked by promtool first; reload
    Prometheus when CP_PROMETHEUS__URL is set."""
    c = cli_context(ctx)
    with c.session() as session:
        if out == "-":
            sys.stdout.write(current_rules(session))
            return
        result = write_rules(session, c.settings, Path(out) if out else None)
    state = "written" if result.changed else "unchanged"
    reloaded = ", Prometheus reloaded" if result.reloaded else ""
    print(f"{result.path}: {state}{reloaded}")


@alertmanager_app.command("config")
def alertmanager_config(
    ctx: typer.Context,
    url: Url = None,
    token_file: TokenFile = None,
    group_wait: Annotated[str, typer.Option()] = "30s",
    group_interval: Annotated[str, typer.Option()] = "5m",
    repeat_interval: Annotated[str, typer.Option()] = "4h",
) -> None:
    """Print an alertmanager.yml whose receiver is the control plane's webhook."""
    settings = cli_context(ctx).settings
    token = _token_file(settings, token_file)
    config = AlertmanagerConfig(
        control_plane_url=_url(settings, url),
        token_file=str(token),
        group_wait=group_wait,
        group_interval=group_interval,
        repeat_interval=repeat_interval,
    )
    _emit(config.render(), token, "operator")
