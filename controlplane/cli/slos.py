from __future__ import annotations

from typing import Annotated

import typer

from controlplane.cli.context import cli_actor
from controlplane.cli.context import cli_context
from controlplane.cli.durations import parse_duration
from controlplane.cli.output import emit
from controlplane.domain import parse_slo
from controlplane.domain.quality import is_quality_spec
from controlplane.guard import quality as quality_probe
from controlplane.prometheus import check_slo
from controlplane.schemas.slos import SloRead
from controlplane.store import engines
from controlplane.store import slos

app = typer.Typer(help="Per-engine SLOs the guard judges changes by.", no_args_is_help=True)


@app.command("set")
def set_(
    ctx: typer.Context,
    engine: str,
    spec: Annotated[
        str, typer.Argument(help="p99_ms<=300, ttft_p95_ms<=500, error_rate<=1% or quality>=0.98")
    ],
    window: Annotated[str, typer.Option(help="Evaluation window, e.g. 30s.")] = "30s",
) -> None:
    """Create or replace an SLO, or the quality spec (quality>=0.98, quality_kl<=0.02)."""
    if is_quality_spec(spec):
        with cli_context(ctx).session() as session:
            row = engines.get_engine(session, engine)
            saved = quality_probe.set_spec(session, engine=row, text=spec, actor=cli_actor())
            text = SloRead.from_row(saved).spec
        print(f"{engine}: {text} (probed during the bake of quality-relevant changes)")
        return
    slo = parse_slo(spec, window_s=parse_duration(window, field="window"))
    with cli_context(ctx).session() as session:
        row = engines.get_engine(session, engine)
        check_slo(session, row, slo)
        slos.set_slo(session, engine_id=row.id, slo=slo, actor=cli_actor())
    print(f"{engine}: {slo.spec()} (window {slo.window_s:g} s)")


@app.command("list")
def list_(
    ctx: typer.Context, engine: str, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    with cli_context(ctx).session() as session:
        row = engines.get_engine(session, engine)
        reads = [SloRead.from_row(r) for r in slos.list_slos(session, row.id)]
    emit(reads, columns=("name", "spec", "window_s"), as_json=as_json)


@app.command()
def remove(ctx: typer.Context, engine: str, name: str) -> None:
    with cli_context(ctx).session() as session:
        row = engines.get_engine(session, engine)
        slos.remove_slo(session, engine_id=row.id, name=name, actor=cli_actor())
    print(f"{engine}: removed {name}")
