"""``cplane tune ENGINE``: a tuning run in the foreground, with a live progress bar and a
table of trials; ``cplane tuning list|show|stop|resume`` for runs started anywhere.

Everything that can be refused (bad SLO or load spec, budget < 1, unknown engine, engine
busy with a rollout or another run) is refused before the run is recorded: one line on
stderr, exit code 2. Ctrl-C or SIGTERM stops after the current trial (the guard finishes or
rolls back the rollout it is baking) and puts the engine back on its pre-study config
through the guard; ``cplane tuning resume`` carries on later.
Exit codes: 0 done, 1 stopped or failed, 2 refused.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from typing import Annotated
from typing import Any

import typer
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn
from rich.progress import MofNCompleteColumn
from rich.progress import Progress
from rich.progress import TextColumn
from rich.progress import TimeElapsedColumn
from rich.table import Table

from controlplane.cli.context import CliContext
from controlplane.cli.context import cli_actor
from controlplane.cli.context import cli_context
from controlplane.cli.ids import RunId
from controlplane.cli.output import emit
from controlplane.engines import adapter_for
from controlplane.schemas.tuning import TuningCreate
from controlplane.schemas.tuning import TuningRunRead
from controlplane.store import engines
from controlplane.store import tuning
from controlplane.store.database import make_session_factory
from tuner import TrialRecord
from tuner import Tuner
from tuner import TuningEvent
from tuner import list_trials
from tuner import request_stop
from tuner import resume_run
from tuner import start_run
from tuner import storage_url
from tuner import sweep_orphaned_runs

app = typer.Typer(help="Tuning runs: list, show, stop, resume.", no_args_is_help=True)
COLUMNS = ("id", "engine_id", "study_name", "state", "objective", "actor", "created")
console = Console(stderr=True)


def tune(
    ctx: typer.Context,
    engine: Annotated[str, typer.Argument(help="Engine name or id.")],
    objective: Annotated[str, typer.Option(help="goodput | p99 | pareto | capacity.")] = "goodput",
    slo: Annotated[
        list[str] | None,
        typer.Option(help="Constraint, e.g. 'p99_ms<=300' (repeatable; default: the engine's)."),
    ] = None,
    load: Annotated[
        str, typer.Option(help="'rate=40[,arrivals=poisson]', 'concurrency=16' or 'live'.")
    ] = "concurrency=16",
    trials: Annotated[int, typer.Option(help="Trial budget, the baseline included.")] = 20,
    knob: Annotated[
        list[str] | None, typer.Option(help="Knob to tune (repeatable; default: all).")
    ] = None,
    sampler: Annotated[str, typer.Option(help="auto | tpe | gp | grid | random.")] = "auto",
    seed: Annotated[int | None, typer.Option(help="Sampler seed (default: random).")] = None,
    no_apply: Annotated[
        bool, typer.Option("--no-apply", help="Report the best config; do not propose it.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Tune ENGINE's knobs under SLO constraints; every trial is a guarded rollout."""
    c = cli_context(ctx)
    request = tuning_request(
        objective=objective,
        slo=slo or [],
        load=load,
        trials=trials,
        knob=knob or [],
        sampler=sampler,
        seed=seed,
        no_apply=no_apply,
    )
    _sweep(c)
    with c.session() as session:
        row = engines.get_engine(session, engine)
        adapter = adapter_for(engines.engine_target(row))
        try:
            run = start_run(
                session,
                engine_ref=engine,
                request=request,
                adapter=adapter,
                policy=c.settings.tuner,
                actor=cli_actor(),
            )
        finally:
            adapter.close()
        run_id, study = run.id, run.study_name
    console.print(f"tuning run {run_id} (study {study}) on {engine}")
    raise typer.Exit(follow(c, run_id, as_json=as_json))


def tuning_request(
    *,
    objective: str = "goodput",
    slo: list[str] | None = None,
    load: str = "concurrency=16",
    trials: int = 20,
    knob: list[str] | None = None,
    sampler: str = "auto",
    seed: int | None = None,
    no_apply: bool = False,
) -> TuningCreate:
    """The request ``cplane tune``'s options spell (``cplane schedule add --tune`` too)."""
    return TuningCreate.model_validate(
        {
            "objective": objective,
            "slo": slo or [],
            "load": load,
            "trials": trials,
            "knobs": knob or [],
            "sampler": sampler,
            "seed": seed,
            "apply_best": not no_apply,
        }
    )


@app.command("list")
def list_(
    ctx: typer.Context,
    engine: Annotated[str | None, typer.Option(help="Only this engine.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Newest first."""
    with cli_context(ctx).session() as session:
        engine_id = engines.get_engine(session, engine).id if engine else None
        rows = tuning.list_runs(session, engine_id=engine_id, limit=limit)
        reads = [TuningRunRead.model_validate(r) for r in rows]
    emit(reads, columns=COLUMNS, as_json=as_json)


@app.command()
def show(ctx: typer.Context, run_id: RunId) -> None:
    """One run (JSON): its spec, result and trials."""
    c = cli_context(ctx)
    with c.session() as session:
        read = TuningRunRead.model_validate(tuning.get_run(session, run_id))
    data: dict[str, Any] = read.model_dump(mode="json")
    try:
        data["trials"] = [
            t.model_dump(mode="json")
            for t in list_trials(storage_url(c.engine()), read.study_name)
        ]
    except Exception:  # noqa: BLE001 - a run that never started has no study yet
        data["trials"] = []
    print(json.dumps(data, indent=2))


@app.command()
def stop(ctx: typer.Context, run_id: RunId) -> None:
    """Ask a run to stop after its current trial (from any process)."""
    with cli_context(ctx).session() as session:
        state = request_stop(session, run_id, actor=cli_actor())
    print(f"tuning run {run_id}: {state}")


@app.command()
def resume(
    ctx: typer.Context,
    run_id: RunId,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Carry on a stopped or interrupted run here, in the foreground."""
    c = cli_context(ctx)
    _sweep(c)
    with c.session() as session:
        resume_run(session, run_id, actor=cli_actor())
    raise typer.Exit(follow(c, run_id, as_json=as_json))


def _sweep(c: CliContext) -> None:
    """Runs a crashed process left ``running`` are interrupted first (their trials failed)."""
    sessions = make_session_factory(c.engine())
    url = storage_url(c.engine())
    swept = sweep_orphaned_runs(
        sessions,
        url=url,
        stale_after_s=c.settings.tuner.stale_after_s,
        tuner=Tuner(session_factory=sessions, storage_url=url, settings=c.settings),
    )
    for run_id in swept:
        console.print(f"tuning run {run_id} was orphaned: interrupted, its running trials failed")


def follow(c: CliContext, run_id: int, *, as_json: bool) -> int:
    # Every load request and every Optuna trial would otherwise be a log line under the
    # live table; the table and the summary say what matters.
    for name in ("optuna", "httpx", "matplotlib"):
        logging.getLogger(name).setLevel(logging.WARNING)
    sessions = make_session_factory(c.engine())
    with sessions() as session:
        run = tuning.get_run(session, run_id)
        budget = int(run.spec.get("trials", 1))
    progress = Progress(
        TextColumn("[bold]run {task.fields[run]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
    )
    task = progress.add_task("starting", total=budget, run=run_id)
    records: list[TrialRecord] = []

    def render() -> Table:
        return _progress_view(progress, records)

    live = Live(render(), console=console, refresh_per_second=4, transient=False)

    def on_event(event: TuningEvent) -> None:
        if event.trial is not None:
            records.append(event.trial)
        progress.update(task, completed=event.done, description=event.message[:80])
        live.update(render())

    tuner = Tuner(
        session_factory=sessions,
        storage_url=storage_url(c.engine()),
        settings=c.settings,
        on_event=on_event,
    )
    stop_event = threading.Event()
    outcome: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            outcome.append(tuner.run(run_id, stop=stop_event))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM (a service manager, a CI timeout) is a Ctrl-C

    worker = threading.Thread(target=work, name=f"tuning-{run_id}")
    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        with live:
            worker.start()
            try:
                while worker.is_alive():
                    worker.join(0.25)
            except KeyboardInterrupt:
                console.print(
                    "interrupted: stopping after the current trial, then back to the "
                    "pre-study config through the guard"
                )
                stop_event.set()
                worker.join()
    finally:
        signal.signal(signal.SIGTERM, previous)
    if errors:
        raise errors[0]
    with sessions() as session:
        final = tuning.get_run(session, run_id)
        state, result = final.state, final.result or {}
    if as_json:
        print(json.dumps({"id": run_id, "state": state, "result": result}, indent=2))
    else:
        _summary(run_id, state, result)
    return 0 if state == "done" else 1


def trial_table(records: list[TrialRecord]) -> Table:
    """One column per knob, so a trial is one line in an 80-column terminal."""
    knobs = sorted({k for r in records for k in r.params})
    value = "capacity/s" if any(r.values and r.goodput is None for r in records) else "value"
    table = Table("#", "kind", *knobs, "outcome", value, "goodput/s", "p99 ms", box=None)
    for r in records:
        table.add_row(
            str(r.number), r.kind, *(str(r.params.get(k, "")) for k in knobs), r.outcome,
            "" if not r.values else f"{r.values[0]:.1f}",
            "" if r.goodput is None else f"{r.goodput:.1f}",
            "" if r.p99_ms is None else f"{r.p99_ms:.0f}",
        )  # fmt: skip
    return table


def _progress_view(progress: Progress, records: list[TrialRecord]) -> Table:
    grid = Table.grid()
    grid.add_row(progress)
    grid.add_row(trial_table(records[-15:]))
    return grid


def _summary(run_id: int, state: str, result: dict[str, Any]) -> None:
    out = Console()
    out.print(f"\ntuning run {run_id}: {state}")
    if result.get("error"):
        out.print(f"error: {result['error']}")
    best = result.get("best")
    if best:
        out.print(f"best: {best['params']} (mean of {best['measurements']}: {best['values']})")
    remeasured = result.get("remeasured")
    if remeasured:
        for label in ("default", "best"):
            r = remeasured[label]
            ci = r.get("ci")
            span = f" (95% CI {ci[0]:.1f}..{ci[1]:.1f})" if ci else ""
            out.print(f"{label}: {r['mean']:.2f}{span} over {r['n']} re-measurements")
    sig = result.get("significance") or {}
    if sig.get("significant") is False:
        out.print(f"not significant: Welch's t-test p = {sig['p_value']:.3g}; CIs overlap: "
                  f"{'yes' if sig.get('ci_overlap') else 'no'}")  # fmt: skip
    elif sig.get("significant") is True:
        out.print(f"significant: Welch's t-test p = {sig['p_value']:.3g}")
    if result.get("headline"):
        out.print(result["headline"])
    elif result.get("improvement"):
        out.print(f"improvement: {result['improvement']:.2f}x")
    if result.get("applied"):
        out.print(f"applied through the guard: {result['applied']}")
    for key in ("note", "report"):
        if result.get(key):
            out.print(f"{key}: {result[key]}")
