"""``cplane oncall``: who is on call, routes, silences, contact methods and rules;
``cplane oncall-schedule`` and ``cplane escalation`` (definitions from a YAML or JSON file,
the same body the API takes); ``cplane notify test``. Audited as ``cli:<user>``.

Secrets (Slack webhook URLs, PagerDuty keys, webhook signing secrets) are never command-line
arguments, which the process list and shell history would show: they are read from an
environment variable named by ``--secret-env`` or prompted for without echo.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Annotated
from typing import Any

import typer
import yaml

from controlplane.cli.context import cli_actor
from controlplane.cli.context import cli_context
from controlplane.cli.durations import parse_duration
from controlplane.cli.output import emit
from controlplane.domain import ValidationError
from controlplane.domain.escalation import ChannelKind
from controlplane.oncall.ical import schedule_feed
from controlplane.oncall.service import send_test_pages
from controlplane.oncall.service import shifts
from controlplane.oncall.service import who_is_on_call
from controlplane.schemas.oncall import ContactMethodCreate
from controlplane.schemas.oncall import NotificationRuleCreate
from controlplane.schemas.oncall import OverrideCreate
from controlplane.schemas.oncall import PolicyCreate
from controlplane.schemas.oncall import RouteCreate
from controlplane.schemas.oncall import ScheduleCreate
from controlplane.schemas.oncall import SilenceCreate
from controlplane.store import oncall
from controlplane.store.base import utcnow

app = typer.Typer(help="On-call: who, routes, silences, contact methods.", no_args_is_help=True)
route_app = typer.Typer(help="Routes: alert labels -> escalation policy.", no_args_is_help=True)
silence_app = typer.Typer(help="Silences and maintenance windows.", no_args_is_help=True)
contact_app = typer.Typer(help="People's contact methods and rules.", no_args_is_help=True)
schedule_app = typer.Typer(help="On-call schedules (rotations).", no_args_is_help=True)
escalation_app = typer.Typer(help="Escalation policies.", no_args_is_help=True)
notify_app = typer.Typer(help="Notifications.", no_args_is_help=True)
app.add_typer(route_app, name="route")
app.add_typer(silence_app, name="silence")
app.add_typer(contact_app, name="contact")
JsonOpt = Annotated[bool, typer.Option("--json")]


def _at(text: str | None) -> datetime:
    if text is None:
        return utcnow()
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValidationError(f"at: {text!r} is not an ISO 8601 time", field="at") from exc
    if at.tzinfo is None:
        raise ValidationError("at: give a UTC offset (e.g. 2026-12-01T09:00:00+01:00)", field="at")
    return at


def _load(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValidationError(f"file: cannot read {path}: {exc.strerror}", field="file") from exc
    try:
        return yaml.safe_load(text) if path.suffix in (".yml", ".yaml") else json.loads(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ValidationError(f"file: {path} is not valid YAML/JSON", field="file") from exc


@app.command("who")
def who(
    ctx: typer.Context,
    schedule: Annotated[str | None, typer.Option(help="One schedule (default: all).")] = None,
    at: Annotated[str | None, typer.Option(help="ISO 8601 time with offset; default now.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Who is on call now, or at a given time."""
    when = _at(at)
    with cli_context(ctx).session() as session:
        rows = who_is_on_call(session, schedule=schedule, at=when)
    emit(rows, columns=("schedule", "user", "source", "at"), as_json=as_json)


@schedule_app.command("list")
def schedule_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    with cli_context(ctx).session() as session:
        rows = oncall.list_schedules(session)
    emit(rows, columns=("id", "name", "timezone", "description"), as_json=as_json)


@schedule_app.command("show")
def schedule_show(
    ctx: typer.Context,
    name: str,
    days: Annotated[int, typer.Option(min=1, max=90, help="Shifts shown.")] = 7,
    as_json: JsonOpt = False,
) -> None:
    """The schedule and its next shifts."""
    now = utcnow()
    with cli_context(ctx).session() as session:
        found = oncall.get_schedule(session, name)
        upcoming = shifts(session, name, now, now + timedelta(days=days))
    if as_json:
        print(
            json.dumps(
                {
                    **found.model_dump(mode="json"),
                    "shifts": [s.model_dump(mode="json") for s in upcoming],
                },
                indent=2,
            )
        )
        return
    print(f"{found.name} ({found.timezone})")
    for s in upcoming:
        print(f"  {s.starts_at.isoformat()} - {s.ends_at.isoformat()}  {s.user}  ({s.source})")


@schedule_app.command("ical")
def schedule_ical(
    ctx: typer.Context,
    name: str,
    days: Annotated[int, typer.Option(min=1, max=90)] = 30,
    out: Annotated[Path | None, typer.Option(help="File to write (default: stdout).")] = None,
) -> None:
    """The next shifts as an iCalendar (.ics) file for calendar apps."""
    c = cli_context(ctx)
    now = utcnow()
    with c.session() as session:
        found = oncall.get_schedule(session, name)
        upcoming = shifts(session, name, now, now + timedelta(days=days))
    body = schedule_feed(found.name, upcoming, now=now)
    if out is None:
        sys.stdout.write(body.decode())
    else:
        out.write_bytes(body)
        print(f"wrote {len(upcoming)} shifts to {out}")


@schedule_app.command("create")
def schedule_create(ctx: typer.Context, file: Path) -> None:
    """Create from a YAML/JSON file: name, timezone, layers (kind daily/weekly/custom,
    start as local wall-clock time, length, participants, restrictions)."""
    body = ScheduleCreate.model_validate(_load(file))
    with cli_context(ctx).session() as session:
        made = oncall.create_schedule(session, body, actor=cli_actor())
    print(f"created on-call schedule {made.name} (id {made.id})")


@schedule_app.command("delete")
def schedule_delete(ctx: typer.Context, name: str) -> None:
    with cli_context(ctx).session() as session:
        oncall.delete_schedule(session, name, actor=cli_actor())
    print(f"deleted on-call schedule {name}")


@schedule_app.command("override")
def schedule_override(
    ctx: typer.Context,
    name: str,
    user: Annotated[str, typer.Option(help="Who covers.")],
    start: Annotated[str, typer.Option("--from", help="ISO 8601 with offset.")],
    end: Annotated[str, typer.Option("--to", help="ISO 8601 with offset.")],
    replaces: Annotated[str | None, typer.Option(help="Whom they cover for.")] = None,
) -> None:
    """Someone covers the schedule from-to (overlaps and inverted times are refused)."""
    body = OverrideCreate(user=user, starts_at=_at(start), ends_at=_at(end), replaces=replaces)
    with cli_context(ctx).session() as session:
        made = oncall.add_override(session, name, body, actor=cli_actor())
    print(f"override {made.id}: {made.user} covers {name} {made.starts_at} - {made.ends_at}")


@escalation_app.command("list")
def escalation_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    with cli_context(ctx).session() as session:
        rows = oncall.list_policies(session)
    emit(rows, columns=("id", "name", "repeat", "steps"), as_json=as_json)


@escalation_app.command("create")
def escalation_create(ctx: typer.Context, file: Path) -> None:
    """Create from a YAML/JSON file: name, repeat, steps (targets of kind schedule, user or team,
    delay_s before the next step)."""
    body = PolicyCreate.model_validate(_load(file))
    with cli_context(ctx).session() as session:
        made = oncall.create_policy(session, body, actor=cli_actor())
    print(f"created escalation policy {made.name} (id {made.id})")


@escalation_app.command("delete")
def escalation_delete(ctx: typer.Context, name: str) -> None:
    with cli_context(ctx).session() as session:
        oncall.delete_policy(session, name, actor=cli_actor())
    print(f"deleted escalation policy {name}")


@route_app.command("add")
def route_add(
    ctx: typer.Context,
    name: str,
    policy: Annotated[str | None, typer.Option(help="Escalation policy.")] = None,
    match: Annotated[list[str] | None, typer.Option(help="Matcher, repeatable.")] = None,
    group_by: Annotated[list[str] | None, typer.Option(help="Label, repeatable.")] = None,
    position: Annotated[int, typer.Option(min=0, help="Lower is tried first.")] = 100,
    auto_resolve: Annotated[bool, typer.Option(help="Resolve when all alerts do.")] = True,
) -> None:
    """Route alerts whose labels match to a policy (no matchers: every alert)."""
    body = RouteCreate(
        name=name,
        policy=policy,
        matchers=match or [],
        group_by=group_by or [],
        position=position,
        auto_resolve=auto_resolve,
    )
    with cli_context(ctx).session() as session:
        oncall.create_route(session, body, actor=cli_actor())
    print(f"created route {name}")


@route_app.command("list")
def route_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    with cli_context(ctx).session() as session:
        rows = oncall.list_routes(session)
    emit(rows, columns=("position", "name", "matchers", "policy", "group_by"), as_json=as_json)


@route_app.command("delete")
def route_delete(ctx: typer.Context, name: str) -> None:
    with cli_context(ctx).session() as session:
        oncall.delete_route(session, name, actor=cli_actor())
    print(f"deleted route {name}")


@silence_app.command("add")
def silence_add(
    ctx: typer.Context,
    duration: Annotated[str, typer.Option("--for", help="e.g. 2h.")],
    match: Annotated[list[str] | None, typer.Option(help="Matcher; none: everything.")] = None,
    comment: Annotated[str, typer.Option()] = "",
) -> None:
    """Suppress matching pages from now for a while (recorded as suppressed)."""
    now = utcnow()
    body = SilenceCreate(
        matchers=match or [],
        starts_at=now,
        ends_at=now + timedelta(seconds=parse_duration(duration, field="for")),
        comment=comment,
    )
    with cli_context(ctx).session() as session:
        made = oncall.create_silence(session, body, actor=cli_actor())
    print(f"silence {made.id} until {made.ends_at.isoformat()}")


@silence_app.command("list")
def silence_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    with cli_context(ctx).session() as session:
        rows = oncall.list_silences(session, active_at=utcnow())
    emit(rows, columns=("id", "matchers", "starts_at", "ends_at", "comment"), as_json=as_json)


@contact_app.command("add")
def contact_add(
    ctx: typer.Context,
    user: str,
    name: str,
    kind: Annotated[ChannelKind, typer.Option()],
    address: Annotated[str | None, typer.Option(help="Email address.")] = None,
    secret_env: Annotated[
        str | None,
        typer.Option(help="Env var holding the Slack/webhook URL or PagerDuty key."),
    ] = None,
    signing_secret_env: Annotated[
        str | None, typer.Option(help="Env var holding a webhook's signing secret.")
    ] = None,
) -> None:
    """Add a contact method (secrets from the environment or a hidden prompt)."""
    fields: dict[str, Any] = {"name": name, "kind": kind, "address": address}
    if kind is not ChannelKind.email:
        value = os.environ.get(secret_env, "") if secret_env else ""
        if not value:
            value = typer.prompt(
                "URL" if kind is not ChannelKind.pagerduty else "key", hide_input=True
            )
        fields["routing_key" if kind is ChannelKind.pagerduty else "url"] = value
    if kind is ChannelKind.webhook:
        fields["secret"] = (
            os.environ.get(signing_secret_env, "") if signing_secret_env else ""
        ) or typer.prompt("signing secret", hide_input=True)
    body = ContactMethodCreate.model_validate(fields)
    with cli_context(ctx).session() as session:
        made = oncall.add_contact_method(session, user=user, body=body, actor=cli_actor())
    print(f"added {made.kind.value} contact {made.name} for {user}: {made.address}")


@contact_app.command("list")
def contact_list(ctx: typer.Context, user: str, as_json: JsonOpt = False) -> None:
    with cli_context(ctx).session() as session:
        rows = oncall.list_contact_methods(session, user=user)
    emit(rows, columns=("id", "name", "kind", "address"), as_json=as_json)


@contact_app.command("rule")
def contact_rule(
    ctx: typer.Context,
    user: str,
    method: str,
    after: Annotated[str, typer.Option(help="Delay after being paged, e.g. 0s or 5m.")] = "0s",
) -> None:
    """Reach USER through METHOD this long after a step pages them."""
    delay = 0.0 if after.strip() in ("0", "0s") else parse_duration(after, field="after")
    body = NotificationRuleCreate(contact_method=method, delay_s=int(delay))
    with cli_context(ctx).session() as session:
        oncall.add_notification_rule(session, user=user, body=body, actor=cli_actor())
    print(f"{user}: {method} after {int(delay)}s")


@notify_app.command("test")
def notify_test(ctx: typer.Context, user: str) -> None:
    """Queue a test page to each of USER's contact methods (the leader's sender sends it)."""
    with cli_context(ctx).session() as session:
        queued = send_test_pages(session, user=user, actor=cli_actor(), now=utcnow())
    print(f"queued {queued} test page(s) for {user}; see cplane incident / the sender's metrics")
