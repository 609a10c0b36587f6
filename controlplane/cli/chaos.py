"""``cplane chaos run|list|show|abort|sweep|probe``, and the experiment flow the API shares.

An experiment is checked (spec, target, duration, hypothesis), recorded and injected in one
unit of work, so bad input or a failed injection leaves neither a fault nor a row behind. The
fault is then held for its duration, its counters collected, removed (the watchdog removes it
too if this process dies), and the guard's reaction read from the rollouts in the store.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from controlplane import chaos
from controlplane.chaos import runs as chaos_runs
from controlplane.cli.context import cli_actor
from controlplane.cli.context import cli_context
from controlplane.cli.durations import parse_duration
from controlplane.cli.ids import ExperimentId
from controlplane.cli.output import emit
from controlplane.schemas.chaos import ChaosExperimentRead
from controlplane.schemas.chaos import ChaosRunCreate
from controlplane.store import chaos as chaos_store
from controlplane.store.database import SessionFactory
from controlplane.store.database import make_session_factory

app = typer.Typer(help="Chaos experiments: inject a fault, watch the guard.", no_args_is_help=True)
COLUMNS = (
    "id",
    "state",
    "target",
    "fault",
    "duration_s",
    "mechanisms",
    "failed_requests",
    "slo_violation_s",
    "actor",
)


@app.command()
def run(
    ctx: typer.Context,
    target: Annotated[str, typer.Option(help="netns:NAME[/DEV][:PORT], host:IFACE, pid:PID")],
    fault: Annotated[str, typer.Option(help="e.g. 'delay 50ms 10ms loss 1%', 'pause'")],
    duration: Annotated[str, typer.Option(help="How long the fault stays, e.g. 30s.")] = "30s",
    engine: Annotated[str | None, typer.Option(help="Engine whose guard is watched.")] = None,
    expect: Annotated[str, typer.Option(help="rollback, hold or any.")] = "any",
    hypothesis: Annotated[
        list[str] | None, typer.Option(help="Steady-state SLO, e.g. p99_ms<=300 (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Inject a fault for a duration, then report the proof and the guard's reaction."""
    c = cli_context(ctx)
    body = ChaosRunCreate(
        target=target,
        fault=fault,
        duration_s=parse_duration(duration, field="duration"),
        engine=engine,
        expected=expect,
        hypothesis=hypothesis or [],
    )
    factory = _factory(ctx)
    started = chaos_runs.start(factory, c.settings, body, actor=cli_actor())
    mech = ", ".join(f"{k}={v}" for k, v in started.injection.mechanisms.items())
    print(f"experiment {started.experiment_id}: {fault} on {target} via {mech}", flush=True)
    read = chaos_runs.finish(factory, started, actor=cli_actor())
    if as_json:
        print(json.dumps(read.model_dump(mode="json"), indent=2))
    else:
        guard = read.result.get("guard", {}).get("reaction", "-")
        print(f"experiment {read.id}: {read.state}; guard reaction: {guard}; {_cost(read)}")


@app.command("list")
def list_(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option(help="running, completed, aborted, failed")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    with cli_context(ctx).session() as session:
        rows = chaos_store.list_experiments(session, state=state)
        reads = [ChaosExperimentRead.model_validate(r) for r in rows]
    emit(reads, columns=COLUMNS, as_json=as_json)


@app.command()
def show(
    ctx: typer.Context,
    experiment_id: ExperimentId,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The experiment's fault, mechanisms, cost to the engine and the guard's reaction."""
    with cli_context(ctx).session() as session:
        read = ChaosExperimentRead.model_validate(
            chaos_store.get_experiment(session, experiment_id)
        )
    if as_json:
        print(json.dumps(read.model_dump(mode="json"), indent=2))
        return
    mech = ", ".join(f"{k}={v}" for k, v in read.mechanisms.items()) or "-"
    guard = read.result.get("guard", {})
    lines = [
        f"experiment {read.id}: {read.state} ({read.actor})",
        f"  fault:      {read.fault} on {read.target} for {read.duration_s:g} s via {mech}",
        f"  cost:       {_cost(read)}",
        f"  guard:      {guard.get('reaction', '-')}"
        + (f" (expected {read.expected})" if read.expected != "any" else ""),
    ]
    for slo in read.result.get("steady_state", {}).get("slos", []):
        lines.append(
            f"  slo {slo['slo']}: {slo['violation_s']:g} s violated, "
            f"{slo['violating']} of {slo['requests']} requests over"
        )
    if read.error:
        lines.append(f"  error:      {read.error}")
    print("\n".join(lines))


@app.command()
def abort(ctx: typer.Context, experiment_id: ExperimentId) -> None:
    """Remove a running experiment's fault now, from any process."""
    c = cli_context(ctx)
    with c.session() as session:
        chaos_store.mark_aborted(session, experiment_id, actor=cli_actor())
    log = chaos.abort(c.settings.chaos_state_dir, chaos_runs.key_of(experiment_id))
    print(f"experiment {experiment_id}: aborted" + (f" ({'; '.join(log)})" if log else ""))


@app.command()
def sweep(ctx: typer.Context) -> None:
    """Remove faults whose owner is gone, and anything carrying the reserved handle or table."""
    c = cli_context(ctx)
    log = chaos.sweep_all(c.settings.chaos, c.settings.chaos_state_dir, scan=True)
    print("\n".join(log) if log else "nothing to sweep")


@app.command()
def probe() -> None:
    """Show what this kernel offers (netem, prio, htb, tbf, nftables) and thus which fallbacks."""
    print(json.dumps(chaos.probe().as_dict(), indent=2))


def _cost(read: ChaosExperimentRead) -> str:
    """One phrase for what the fault cost; says why when it was not measured."""
    if read.failed_requests is None and read.slo_violation_s is None:
        note = read.result.get("steady_state", {}).get("note") or "no engine named"
        return f"cost not measured ({note})"
    failed = "-" if read.failed_requests is None else str(read.failed_requests)
    violated = "-" if read.slo_violation_s is None else f"{read.slo_violation_s:g} s"
    return f"{failed} failed requests, {violated} in SLO violation"


def _factory(ctx: typer.Context) -> SessionFactory:
    return make_session_factory(cli_context(ctx).engine())
