"""``cplane incident``: list, show, acknowledge, resolve, snooze and annotate incidents.
Each command acts on the store directly and is audited as the OS user (``cli:<user>``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from controlplane.cli.context import cli_actor
from controlplane.cli.context import cli_context
from controlplane.cli.durations import parse_duration
from controlplane.cli.output import emit
from controlplane.domain import ValidationError
from controlplane.domain.incidents import IncidentState
from controlplane.store import incidents
from controlplane.store.base import utcnow

app = typer.Typer(help="Incidents: alerts grouped for a person to act on.", no_args_is_help=True)
IncidentId = Annotated[int, typer.Argument(min=1, max=2**31 - 1, help="Incident id.")]
COLUMNS = ("id", "state", "title", "alerts_firing", "alerts_total", "triggered_at", "policy")


@app.command("list")
def list_incidents(
    ctx: typer.Context,
    state: Annotated[list[IncidentState] | None, typer.Option(help="Repeatable.")] = None,
    open_only: Annotated[bool, typer.Option("--open", help="Not resolved.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Incidents, newest first."""
    states = list(state or [])
    if open_only:
        states = [s for s in IncidentState if s is not IncidentState.resolved]
    with cli_context(ctx).session() as session:
        rows = incidents.list_incidents(session, states=states, limit=limit)
    emit(rows, columns=COLUMNS, as_json=as_json)


@app.command("show")
def show(
    ctx: typer.Context,
    incident_id: IncidentId,
    before: Annotated[
        str, typer.Option(help="Rollouts and tuning runs from this long before it opened.")
    ] = "30m",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One incident with its timeline, notifications, and the rollouts and tuning runs of
    its engine around it."""
    lead = timedelta(seconds=parse_duration(before, field="before"))
    if lead > timedelta(days=7):
        raise ValidationError("before: at most 7 days", field="before")
    with cli_context(ctx).session() as session:
        detail = incidents.get_incident(session, incident_id, now=utcnow(), lead=lead)
    if as_json:
        print(detail.model_dump_json(indent=2))
        return
    print(f"#{detail.id} [{detail.state.value}] {detail.title}")
    print(f"  engine: {detail.engine or '-'}  policy: {detail.policy or '-'}  key: {detail.key}")
    print(f"  alerts: {detail.alerts_firing} firing of {detail.alerts_total}")
    for e in detail.timeline:
        extra = " ".join(f"{k}={v}" for k, v in e.detail.items())
        print(f"  {e.at.isoformat()}  {e.kind:<14} {e.actor}  {extra}")
    for n in detail.notifications:
        print(
            f"  notify {n.channel.value:<9} {n.action:<11} {n.state.value:<10} "
            f"to {n.user or '-'} (attempts {n.attempts})"
        )
    window = f"{detail.context_from.isoformat()} .. {detail.context_to.isoformat()}"
    print(f"  changes around it ({window}):")
    for r in detail.rollouts:
        ended = r.finished_at.isoformat() if r.finished_at else "in flight"
        began = r.started_at.isoformat()
        print(f"  rollout #{r.id:<6} {r.state:<12} {r.reason:<14} {began} .. {ended}")
    for t in detail.tuning_runs:
        ended = t.finished_at.isoformat() if t.finished_at else "in progress"
        began = t.started_at.isoformat()
        print(f"  tuning  #{t.id:<6} {t.state:<12} {t.objective:<14} {began} .. {ended}")
    if not detail.rollouts and not detail.tuning_runs:
        print("  (no rollouts or tuning runs)")


@app.command("ack")
def ack(ctx: typer.Context, incident_id: IncidentId) -> None:
    """Acknowledge: the escalation stops."""
    with cli_context(ctx).session() as session:
        done = incidents.acknowledge(session, incident_id, actor=cli_actor(), now=utcnow())
    print(f"incident {done.id} {done.state.value}")


@app.command("resolve")
def resolve(ctx: typer.Context, incident_id: IncidentId) -> None:
    with cli_context(ctx).session() as session:
        done = incidents.resolve(session, incident_id, actor=cli_actor(), now=utcnow())
    print(f"incident {done.id} {done.state.value}")


@app.command("snooze")
def snooze(
    ctx: typer.Context,
    incident_id: IncidentId,
    duration: Annotated[str, typer.Argument(help="How long, e.g. 30m or 2h.")],
) -> None:
    """Quiet for a while; then it triggers again and escalation starts over."""
    seconds = parse_duration(duration, field="duration")
    if seconds < 60:
        raise ValidationError("duration: snooze for a minute at least", field="duration")
    with cli_context(ctx).session() as session:
        done = incidents.snooze(
            session, incident_id, minutes=int(seconds // 60), actor=cli_actor(), now=utcnow()
        )
    print(f"incident {done.id} snoozed until {done.snoozed_until}")


@app.command("note")
def note(ctx: typer.Context, incident_id: IncidentId, text: str) -> None:
    """Add a note to the timeline."""
    if not text.strip() or len(text) > 4000:
        raise ValidationError("text: 1 to 4000 characters", field="text")
    with cli_context(ctx).session() as session:
        incidents.add_note(session, incident_id, text=text, actor=cli_actor(), now=utcnow())
    print(f"noted on incident {incident_id}")
