"""``cplane schedule``: tuning runs on a cron schedule, in the engine's own timezone.

``add`` validates everything a firing will need (the cron, the timezone, the firing-rate
floor, the engine, and the tuning spec with the checks ``cplane tune`` applies) before it
writes anything: a refusal is one line on stderr and exit code 2. The leader of ``cplane up``
fires schedules; ``run-now`` fires one here, in the foreground, like ``cplane tune``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated
from typing import Any

import typer

from controlplane.cli import tune
from controlplane.cli.context import cli_actor
from controlplane.cli.context import cli_context
from controlplane.cli.output import emit
from controlplane.domain import ValidationError
from controlplane.engines import adapter_for
from controlplane.scheduler.tuning_schedules import create_schedule
from controlplane.scheduler.tuning_schedules import fire
from controlplane.scheduler.tuning_schedules import next_fire
from controlplane.scheduler.tuning_schedules import settle
from controlplane.scheduler.tuning_schedules import trigger_of
from controlplane.schemas.schedules import ScheduleCreate
from controlplane.schemas.schedules import ScheduleRead
from controlplane.schemas.schedules import ScheduleRunRead
from controlplane.schemas.schedules import fire_times
from controlplane.schemas.tuning import TuningCreate
from controlplane.store import audit
from controlplane.store import engines
from controlplane.store import jobs
from controlplane.store import schedules
from controlplane.store.base import utcnow
from controlplane.store.database import make_session_factory
from controlplane.store.models import ScheduleRow

app = typer.Typer(help="Scheduled tuning runs.", no_args_is_help=True)
COLUMNS = ("id", "name", "engine_id", "cron", "timezone", "paused", "next_fire")
RUN_COLUMNS = ("id", "scheduled_for", "state", "reason", "tuning_run_id", "error")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]

# ``--tune`` keys and the ``cplane tune`` option each stands for; repeatable ones collect.
_TUNE_KEYS = {
    "objective": "objective",
    "slo": "slo",
    "load": "load",
    "trials": "trials",
    "knob": "knob",
    "knobs": "knob",
    "sampler": "sampler",
    "seed": "seed",
    "apply": "apply",
}
_REPEATABLE = {"slo", "knob"}
_TUNE_HELP = (
    "expected comma-separated key=value pairs of objective, slo, load, trials, knob, "
    "sampler, seed, apply, e.g. 'objective=goodput,slo=p99_ms<=300,load=rate=40,trials=20'"
)


def parse_tune(text: str) -> TuningCreate:
    """``objective=goodput,slo=p99_ms<=300,load=rate=40,arrivals=poisson,trials=20``: the
    options of ``cplane tune`` on one line. A part whose key is not one of them continues the
    value before it, so a load spec keeps its own commas; ``slo`` and ``knob`` repeat.

    Raises:
        ValidationError: on field ``tune`` for an unknown key or a part without ``=``.
        pydantic.ValidationError: a value the tuning request refuses (the field named).
    """
    fields: dict[str, Any] = {}
    last: str | None = None
    for part in (p.strip() for p in text.split(",")):
        key, sep, value = part.partition("=")
        name = _TUNE_KEYS.get(key.strip().lower()) if sep else None
        if name is None:
            if last is None or not part:
                raise ValidationError(f"cannot parse --tune {text!r}: {_TUNE_HELP}", field="tune")
            if last in _REPEATABLE:
                fields[last][-1] += f",{part}"
            else:
                fields[last] += f",{part}"
            continue
        if name in _REPEATABLE:
            fields.setdefault(name, []).append(value.strip())
        elif name in fields:
            raise ValidationError(f"--tune names {key!r} twice", field="tune")
        else:
            fields[name] = value.strip()
        last = name
    apply = str(fields.pop("apply", "true")).lower()
    if apply not in ("true", "false", "yes", "no", "1", "0"):
        raise ValidationError(f"--tune apply={apply!r}: expected true or false", field="tune")
    if "trials" in fields and not str(fields["trials"]).isdigit():
        raise ValidationError(
            f"--tune trials={fields['trials']!r}: expected a whole number", field="tune"
        )
    if "seed" in fields and not str(fields["seed"]).isdigit():
        raise ValidationError(
            f"--tune seed={fields['seed']!r}: expected a whole number", field="tune"
        )
    return tune.tuning_request(
        objective=fields.get("objective", "goodput"),
        slo=fields.get("slo"),
        load=fields.get("load", "concurrency=16"),
        trials=int(fields.get("trials", 20)),
        knob=fields.get("knob"),
        sampler=fields.get("sampler", "auto"),
        seed=int(fields["seed"]) if "seed" in fields else None,
        no_apply=apply in ("false", "no", "0"),
    )


def _spec_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ValidationError(f"--spec {path}: {exc.strerror}", field="spec") from exc
    except ValueError as exc:
        raise ValidationError(f"--spec {path} is not valid JSON: {exc}", field="spec") from exc
    if not isinstance(data, dict):
        raise ValidationError(f"--spec {path} must hold a JSON object", field="spec")
    return data


def _read(row: ScheduleRow) -> ScheduleRead:
    return ScheduleRead.model_validate(row).model_copy(update={"next_fire": next_fire(row)})


@app.command()
def add(
    ctx: typer.Context,
    engine: Annotated[str, typer.Argument(help="Engine name or id.")],
    cron: Annotated[str, typer.Option(help="5-field crontab, e.g. '0 3 * * *'.")],
    tz: Annotated[str, typer.Option("--tz", help="IANA timezone of --cron.")] = "UTC",
    tune_spec: Annotated[
        str | None,
        typer.Option("--tune", help="'objective=goodput,slo=p99_ms<=300,load=rate=40,trials=20'."),
    ] = None,
    spec: Annotated[
        Path | None, typer.Option(help="JSON file: the body of POST /tuning-runs.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Default: <engine>-<n>.")] = None,
    window: Annotated[
        str | None, typer.Option(help="Maintenance window, e.g. 'mon-fri 01:00-05:00'.")
    ] = None,
    min_rps: Annotated[
        float | None, typer.Option(help="Live load: skip below this many requests/s.")
    ] = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Schedule tuning runs of ENGINE."""
    if tune_spec is not None and spec is not None:
        raise ValidationError("give --tune or --spec, not both", field="spec")
    if spec is not None:
        body: dict[str, Any] = _spec_file(spec)
    else:
        body = parse_tune(tune_spec or "").model_dump() if tune_spec else {}
    skip: dict[str, Any] = {}
    if window is not None:
        skip["window"] = window
    if min_rps is not None:
        skip["min_rps"] = min_rps
    data = ScheduleCreate.model_validate(
        {
            "engine": engine,
            "name": name,
            "cron": cron,
            "timezone": tz,
            "spec": body,
            "skip": skip,
            "paused": paused,
        }
    )
    c = cli_context(ctx)
    with c.session() as session:
        row = create_schedule(
            session, data, settings=c.settings, adapter_factory=adapter_for, actor=cli_actor()
        )
        read = _read(row)
    if as_json:
        print(json.dumps(read.model_dump(mode="json"), indent=2))
        return
    when = f"; next at {read.next_fire:%Y-%m-%d %H:%M %Z}" if read.next_fire else " (paused)"
    print(f"schedule {read.id} ({read.name}) on {engine}: {read.cron} {read.timezone}{when}")


@app.command("list")
def list_(
    ctx: typer.Context,
    engine: Annotated[str | None, typer.Option(help="Only this engine.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every schedule, with its next fire time (none while paused)."""
    with cli_context(ctx).session() as session:
        engine_id = engines.get_engine(session, engine).id if engine else None
        reads = [_read(r) for r in schedules.list_schedules(session, engine_id=engine_id)]
    emit(reads, columns=COLUMNS, as_json=as_json)


@app.command()
def show(ctx: typer.Context, schedule: str) -> None:
    """One schedule (JSON): its spec, skip rules, next five fire times and last firings."""
    with cli_context(ctx).session() as session:
        row = schedules.get_schedule(session, schedule)
        data: dict[str, Any] = _read(row).model_dump(mode="json")
        upcoming = [] if row.paused else fire_times(trigger_of(row), utcnow(), limit=5)
        data["next_fires"] = [t.isoformat() for t in upcoming]
        data["last_runs"] = [
            ScheduleRunRead.model_validate(r).model_dump(mode="json")
            for r in jobs.list_runs(session, job=schedules.job_name(row.id), limit=5)
        ]
    print(json.dumps(data, indent=2))


@app.command()
def pause(ctx: typer.Context, schedule: str) -> None:
    """Stop firing SCHEDULE until it is resumed (run-now still fires it)."""
    with cli_context(ctx).session() as session:
        row = schedules.set_paused(
            session, schedules.get_schedule(session, schedule), True, actor=cli_actor()
        )
        print(f"schedule {row.id} ({row.name}): paused")


@app.command()
def resume(ctx: typer.Context, schedule: str) -> None:
    """Fire SCHEDULE on its cron again."""
    with cli_context(ctx).session() as session:
        row = schedules.set_paused(
            session, schedules.get_schedule(session, schedule), False, actor=cli_actor()
        )
        print(
            f"schedule {row.id} ({row.name}): resumed; next at {next_fire(row):%Y-%m-%d %H:%M %Z}"
        )


@app.command()
def remove(ctx: typer.Context, schedule: str) -> None:
    """Remove a schedule; its past firings stay in the history of job runs."""
    with cli_context(ctx).session() as session:
        row = schedules.get_schedule(session, schedule)
        label = f"schedule {row.id} ({row.name})"
        schedules.delete_schedule(session, row, actor=cli_actor())
    print(f"{label}: removed")


@app.command("run-now")
def run_now(
    ctx: typer.Context,
    schedule: str,
    force: Annotated[
        bool, typer.Option("--force", help="Ignore the maintenance window and traffic floor.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Fire SCHEDULE now, here, and follow the tuning run it starts (Ctrl-C stops after the
    current trial). Exit codes: 0 done, 1 skipped, failed or stopped, 2 refused."""
    c = cli_context(ctx)
    with c.session() as session:
        row = schedules.get_schedule(session, schedule)
        schedule_id = row.id
        audit.record(
            session,
            actor=cli_actor(),
            action="schedule.run_now",
            target_type="schedule",
            target_id=schedule_id,
            detail={"force": force},
        )
    sessions = make_session_factory(c.engine())
    started: list[int] = []
    firing = fire(
        sessions,
        schedule_id,
        utcnow(),
        settings=c.settings,
        adapter_factory=adapter_for,
        submit=started.append,
        fence=None,
        force=force,
    )
    if firing.state != "started":
        label = f"skipped ({firing.reason})" if firing.reason else firing.state
        print(f"schedule {schedule_id}: {label}: {firing.message}")
        raise typer.Exit(1)
    print(f"schedule {schedule_id}: {firing.message}")
    code = tune.follow(c, started[0], as_json=as_json)
    assert firing.job_run_id is not None
    settle(sessions, fence=None, job_run_ids=[firing.job_run_id])
    raise typer.Exit(code)


@app.command()
def history(
    ctx: typer.Context,
    schedule: str,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Firings, newest first: started, skipped (with the reason code), done or failed."""
    with cli_context(ctx).session() as session:
        row = schedules.get_schedule(session, schedule)
        runs = jobs.list_runs(session, job=schedules.job_name(row.id), limit=limit)
        reads = [ScheduleRunRead.model_validate(r) for r in runs]
    if as_json or not reads:
        emit(reads, columns=RUN_COLUMNS, as_json=as_json)
        return
    emit(reads, columns=RUN_COLUMNS, as_json=False)
    for r in reads:
        message = r.detail.get("message")
        if r.state == "skipped" and message:
            print(f"  {r.scheduled_for:%Y-%m-%d %H:%M} skipped: {message}")
