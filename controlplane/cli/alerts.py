"""``cplane alerts``: the alerts the control plane holds (from Alertmanager, the guard and the
built-in detectors) and one alert's firing / resolved history."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from controlplane.cli.context import cli_context
from controlplane.cli.output import emit
from controlplane.domain.alerts import AlertSource
from controlplane.domain.alerts import AlertState
from controlplane.store import alerts
from controlplane.store import engines

app = typer.Typer(help="Alerts from Alertmanager, the guard and the built-in detectors.")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
COLUMNS = ("id", "status", "alertname", "engine", "source", "starts_at", "ends_at")


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[AlertState | None, typer.Option(help="Only this status.")] = None,
    engine: Annotated[str | None, typer.Option(help="Only this engine (name or id).")] = None,
    alertname: Annotated[str | None, typer.Option(help="Only alerts of this name.")] = None,
    source: Annotated[AlertSource | None, typer.Option(help="Only from this source.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Most recently changed first."""
    with cli_context(ctx).session() as session:
        engine_id = engines.get_engine(session, engine).id if engine else None
        reads = alerts.list_alerts(
            session,
            status=status,
            engine_id=engine_id,
            alertname=alertname,
            source=source,
            limit=limit,
        )
    emit(reads, columns=COLUMNS, as_json=as_json)


@app.command()
def show(ctx: typer.Context, alert_id: Annotated[int, typer.Argument(min=1)]) -> None:
    """One alert with its labels, annotations and history (JSON)."""
    with cli_context(ctx).session() as session:
        detail = alerts.get_alert(session, alert_id)
    print(json.dumps(detail.model_dump(mode="json"), indent=2))
