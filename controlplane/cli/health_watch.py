"""``cplane engine watch ENGINE``: the engine's health watch (interval, failures in a row,
window after a commit) and its state; options set per-engine overrides."""

from __future__ import annotations

import json
from typing import Annotated
from typing import Any

import typer

from controlplane.cli.context import cli_actor
from controlplane.cli.context import cli_context
from controlplane.cli.durations import parse_duration
from controlplane.scheduler.health_watch import describe
from controlplane.scheduler.health_watch import update
from controlplane.schemas.health_watch import HealthWatchUpdate
from controlplane.store import engines


def watch(
    ctx: typer.Context,
    engine: Annotated[str, typer.Argument(help="Engine name or id.")],
    interval: Annotated[
        str | None, typer.Option(help="Between two inference checks, e.g. 15s.")
    ] = None,
    failures: Annotated[
        int | None, typer.Option(help="Failed checks in a row that roll back.")
    ] = None,
    window: Annotated[
        str | None, typer.Option(help="How long after a commit to watch, e.g. 24h.")
    ] = None,
    enable: Annotated[
        bool | None, typer.Option("--enable/--disable", help="Switch the watch on or off.")
    ] = None,
    default: Annotated[
        bool, typer.Option("--default", help="Drop every override of this engine.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show ENGINE's health watch; with options, change it first (audited)."""
    changes: dict[str, Any] = {}
    if default:
        changes = {"enabled": None, "interval_s": None, "failures": None, "window_s": None}
    if interval is not None:
        changes["interval_s"] = parse_duration(interval, field="interval")
    if failures is not None:
        changes["failures"] = failures
    if window is not None:
        changes["window_s"] = parse_duration(window, field="window")
    if enable is not None:
        changes["enabled"] = enable
    body = HealthWatchUpdate.model_validate(changes)
    c = cli_context(ctx)
    with c.session() as session:
        row = engines.get_engine(session, engine)
        if changes:
            read = update(
                session,
                row.id,
                row.name,
                body,
                defaults=c.settings.health_watch,
                actor=cli_actor(),
            )
        else:
            read = describe(session, row.id, row.name, c.settings.health_watch)
    if as_json:
        print(json.dumps(read.model_dump(mode="json"), indent=2))
        return
    state = "on" if read.enabled else "off"
    print(
        f"{read.engine}: health watch {state}: a check every {read.interval_s:g} s, "
        f"{read.failures} failures in a row roll back, for {read.window_s:g} s after a commit"
    )
    if read.overrides:
        print("overrides: " + ", ".join(f"{k}={v}" for k, v in sorted(read.overrides.items())))
    if read.watched_rollout_id is not None:
        last = f", last error: {read.last_error}" if read.last_error else ""
        print(
            f"watching rollout {read.watched_rollout_id}: {read.consecutive_failures} "
            f"failure(s) in a row{last}"
        )
    if read.rollback_rollout_id is not None:
        print(f"rolled back by rollout {read.rollback_rollout_id}")
