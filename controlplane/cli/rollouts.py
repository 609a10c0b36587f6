"""Guarded changes from the command line. ``cplane engine apply`` runs the guard in this
process, in the foreground, and follows the rollout to its end; Ctrl-C rolls it back.
Exit codes: 0 committed, 1 rolled back or failed, 2 refused before anything changed."""

from __future__ import annotations

import json
import threading
import time
from typing import Annotated

import typer

from controlplane.cli.context import CliContext
from controlplane.cli.context import cli_actor
from controlplane.cli.context import cli_context
from controlplane.cli.durations import parse_duration
from controlplane.cli.ids import RolloutId
from controlplane.cli.output import emit
from controlplane.domain import RolloutState
from controlplane.domain import ValidationError
from controlplane.domain.canary import DEFAULT_PLAN
from controlplane.engines import adapter_for
from controlplane.guard import RolloutRunner
from controlplane.guard import propose
from controlplane.schemas.rollouts import RolloutRead
from controlplane.store import engines
from controlplane.store import rollouts
from controlplane.store.database import make_session_factory

app = typer.Typer(
    help="Guarded rollouts: list, inspect, approve, roll back.", no_args_is_help=True
)
COLUMNS = ("id", "engine_id", "state", "reason", "actor", "created", "error")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def parse_changes(pairs: list[str]) -> dict[str, str]:
    changes: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValidationError(f"{pair!r} is not knob=value", field="changes")
        changes[key.strip()] = value.strip()
    return changes


def apply(
    ctx: typer.Context,
    engine: str,
    changes: Annotated[list[str], typer.Argument(help="knob=value, e.g. max_batch_size=16")],
    bake: Annotated[
        str | None, typer.Option(help="Bake window, e.g. 60s (default CP_GUARD__BAKE_S).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and print the plan.")
    ] = False,
    canary: Annotated[
        str | None,
        typer.Option(
            help="Go out as a canary on one replica: share:hold steps, e.g. "
            f"'{DEFAULT_PLAN}' (engines with two or more replicas)."
        ),
    ] = None,
) -> None:
    """Change a live engine through the guard and follow the rollout to its end."""
    c = cli_context(ctx)
    bake_s = parse_duration(bake, field="bake") if bake else c.settings.guard.bake_s
    with c.session() as session:
        row = engines.get_engine(session, engine)
        adapter = adapter_for(engines.engine_target(row))
        try:
            plan = propose(
                session,
                engine=row,
                adapter=adapter,
                changes=parse_changes(changes),
                reason="manual",
                actor=cli_actor(),
                bake_s=bake_s,
                dry_run=dry_run,
                canary=canary,
            )
        finally:
            adapter.close()
    print(json.dumps(plan.model_dump(mode="json"), indent=2))
    if dry_run or plan.rollout_id is None:
        return
    raise typer.Exit(_follow(c, plan.rollout_id))


@app.command("list")
def list_(
    ctx: typer.Context,
    engine: Annotated[str | None, typer.Option(help="Only this engine.")] = None,
    state: Annotated[RolloutState | None, typer.Option(help="Only this state.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Newest first."""
    with cli_context(ctx).session() as session:
        engine_id = engines.get_engine(session, engine).id if engine else None
        rows = rollouts.list_rollouts(session, engine_id=engine_id, state=state, limit=limit)
        reads = [RolloutRead.model_validate(r) for r in rows]
    emit(reads, columns=COLUMNS, as_json=as_json)


@app.command()
def show(ctx: typer.Context, rollout_id: RolloutId) -> None:
    """One rollout with its evidence (JSON): baseline, decisions, verdict, rollback."""
    with cli_context(ctx).session() as session:
        read = RolloutRead.model_validate(rollouts.get_rollout(session, rollout_id))
    print(json.dumps(read.model_dump(mode="json"), indent=2))


@app.command()
def approve(ctx: typer.Context, rollout_id: RolloutId) -> None:
    """Approve a change the tuner or a schedule proposed, and run it here."""
    c = cli_context(ctx)
    with c.session() as session:
        rollouts.approve(session, rollouts.get_rollout(session, rollout_id), actor=cli_actor())
    raise typer.Exit(_follow(c, rollout_id))


@app.command()
def rollback(ctx: typer.Context, rollout_id: RolloutId) -> None:
    """Ask the process baking a rollout to stop and restore the last known good config."""
    with cli_context(ctx).session() as session:
        rollouts.request_rollback(
            session, rollouts.get_rollout(session, rollout_id), actor=cli_actor()
        )
    print(f"rollback of rollout {rollout_id} requested")


def _follow(c: CliContext, rollout_id: int) -> int:
    sessions = make_session_factory(c.engine())
    runner = RolloutRunner(session_factory=sessions, policy=c.settings.guard)
    stop = threading.Event()
    result: list[RolloutState] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(runner.execute(rollout_id, stop=stop))
        except BaseException as exc:  # noqa: BLE001 - reported below, in the main thread
            errors.append(exc)

    worker = threading.Thread(target=run, name=f"rollout-{rollout_id}")
    worker.start()
    seen = ""
    try:
        while worker.is_alive():
            with sessions() as session:
                state = rollouts.get_rollout(session, rollout_id).state
            if state != seen:
                print(f"rollout {rollout_id}: {state}", flush=True)
                seen = state
            worker.join(0.25)
    except KeyboardInterrupt:
        print(f"rollout {rollout_id}: interrupted, rolling back", flush=True)
        stop.set()
        worker.join()
    if errors:
        raise errors[0]
    with sessions() as session:
        row = rollouts.get_rollout(session, rollout_id)
        verdict = row.evidence.get("verdict", {})
    print(f"rollout {rollout_id}: {row.state} - {verdict.get('summary') or row.error or ''}")
    time.sleep(0)
    return 0 if result and result[0] is RolloutState.committed else 1
