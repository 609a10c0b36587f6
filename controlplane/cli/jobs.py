"""``cplane jobs``: the scheduler's system jobs, who leads, and their history."""

from __future__ import annotations

from typing import Annotated

import typer

from controlplane.cli.context import cli_actor
from controlplane.cli.context import cli_context
from controlplane.cli.durations import parse_duration
from controlplane.cli.output import emit
from controlplane.domain import ValidationError
from controlplane.scheduler import change_job
from controlplane.scheduler import job_list
from controlplane.scheduler import job_runs
from controlplane.schemas.base import ReadModel
from controlplane.schemas.jobs import JobUpdate
from controlplane.store.base import utcnow

app = typer.Typer(
    help="System jobs (retention, sweeps, reconcile) and the scheduler's leader.",
    invoke_without_command=True,
)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


class _Row(ReadModel):
    name: str
    kind: str
    scope: str
    interval: str
    enabled: bool
    last_run: str
    next_run: str


def _when(value: object) -> str:
    return "" if value is None else str(value)[:19].replace("T", " ")


@app.callback()
def list_(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List system jobs with their last and next run, and the leader."""
    if ctx.invoked_subcommand is not None:
        return
    with cli_context(ctx).session() as session:
        listing = job_list(session, now=utcnow())
    if as_json:
        emit(listing, columns=(), as_json=True)
        return
    rows = []
    for job in listing.jobs:
        last = job.last_run
        rows.append(
            _Row(
                name=job.name,
                kind=job.kind,
                scope=job.scope,
                interval=f"{job.interval_s:g}s",
                enabled=job.enabled,
                last_run="" if last is None else f"{_when(last.scheduled_for)} {last.state}",
                next_run=_when(job.next_run_at),
            )
        )
    emit(rows, columns=tuple(_Row.model_fields), as_json=False)
    leader = listing.leader
    if leader is None or not leader.live:
        print("leader: none (no `cplane up` holds the lease)")
    else:
        print(f"leader: {leader.holder} (token {leader.token}, until {_when(leader.expires_at)})")


@app.command("set")
def set_(
    ctx: typer.Context,
    name: str,
    interval: Annotated[str | None, typer.Option(help="e.g. 30s, 10m, 1h.")] = None,
    enabled: Annotated[
        bool | None, typer.Option("--enabled/--disabled", help="Switch the job on or off.")
    ] = None,
) -> None:
    """Change a job's interval or switch it on or off (audited)."""
    if interval is None and enabled is None:
        raise ValidationError("nothing to change: give --interval, --enabled or --disabled")
    seconds = None if interval is None else parse_duration(interval, field="interval")
    c = cli_context(ctx)
    with c.session() as session:
        job = change_job(
            session,
            name,
            JobUpdate(interval_s=seconds, enabled=enabled),
            actor=cli_actor(),
            policy=c.settings.scheduler,
            now=utcnow(),
        )
    state = "enabled" if job.enabled else "disabled"
    print(f"{job.name}: every {job.interval_s:g} s, {state}")


@app.command()
def history(
    ctx: typer.Context,
    name: str,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Recorded runs of a job, newest first."""
    with cli_context(ctx).session() as session:
        runs = job_runs(session, name, limit=limit)
    emit(
        runs,
        columns=("id", "scheduled_for", "state", "reason", "holder", "detail", "error"),
        as_json=as_json,
    )
