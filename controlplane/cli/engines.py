from __future__ import annotations

from typing import Annotated
from typing import Any

import typer

from controlplane.cli.context import cli_actor
from controlplane.cli.context import cli_context
from controlplane.cli.output import emit
from controlplane.domain import ValidationError
from controlplane.schemas.engines import EngineCreate
from controlplane.schemas.engines import EngineRead
from controlplane.store import engines

app = typer.Typer(help="Registered inference engines.", no_args_is_help=True)
COLUMNS = ("id", "name", "kind", "url", "approval_mode", "labels")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _labels(pairs: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValidationError(f"label {pair!r} is not key=value", field="labels")
        labels[key] = value
    return labels


@app.command()
def add(
    ctx: typer.Context,
    name: str,
    url: Annotated[str, typer.Option(help="Base URL of the engine.")],
    kind: Annotated[str, typer.Option(help="reference, vllm, sglang, tgi, triton or process.")] = (
        "reference"
    ),
    metrics_url: Annotated[str | None, typer.Option(help="Default <url>/metrics.")] = None,
    admin_token: Annotated[
        str | None, typer.Option(envvar="CP_ENGINE_ADMIN_TOKEN", help="Engine admin token.")
    ] = None,
    approval: Annotated[str, typer.Option(help="auto or manual.")] = "auto",
    label: Annotated[list[str] | None, typer.Option(help="key=value, repeatable.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register an engine."""
    values: dict[str, Any] = {
        "name": name,
        "url": url,
        "kind": kind,
        "metrics_url": metrics_url,
        "admin_token": admin_token,
        "approval_mode": approval,
        "labels": _labels(label or []),
    }
    data = EngineCreate.model_validate(values)
    with cli_context(ctx).session() as session:
        row = engines.add_engine(session, data=data, actor=cli_actor())
        emit(EngineRead.from_row(row), columns=COLUMNS, as_json=as_json)


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List engines."""
    with cli_context(ctx).session() as session:
        rows = [EngineRead.from_row(r) for r in engines.list_engines(session)]
    emit(rows, columns=COLUMNS, as_json=as_json)


@app.command()
def show(ctx: typer.Context, engine: str, as_json: JsonOpt = False) -> None:
    """Show one engine (by name or id)."""
    with cli_context(ctx).session() as session:
        row = EngineRead.from_row(engines.get_engine(session, engine))
    emit(row, columns=(*COLUMNS, "metrics_url", "has_admin_token", "created"), as_json=as_json)


@app.command()
def remove(
    ctx: typer.Context,
    engine: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Unregister an engine and delete its history (the audit log keeps the deletion)."""
    if not yes:
        typer.confirm(f"Remove engine {engine!r} and its config history?", abort=True)
    with cli_context(ctx).session() as session:
        engines.remove_engine(session, ref=engine, actor=cli_actor())
    print(f"removed {engine}")
