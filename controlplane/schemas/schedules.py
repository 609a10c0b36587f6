"""Scheduled tuning runs at the edge: the request that creates one, and what is read back.

A schedule's cron expression and timezone are parsed here (with APScheduler's own crontab
parser and the IANA database through ``zoneinfo``), and its tuning spec is the very model
``POST /tuning-runs`` takes, so a schedule that would be refused later is refused now, with
the field named. The maintenance window has a one-line spelling (``mon-fri 01:00-05:00``)
shared by the CLI and the API. Checks that need the store (the engine, its SLOs and knobs,
the firing-rate floor) are made in :mod:`controlplane.scheduler`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import time
from datetime import timedelta
from typing import Annotated
from typing import Any
from zoneinfo import ZoneInfo
from zoneinfo import ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import StringConstraints
from pydantic import field_validator

from controlplane.domain import ValidationError
from controlplane.schemas.base import InputModel
from controlplane.schemas.base import ReadModel
from controlplane.schemas.tuning import TuningCreate

ScheduleName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$"),
]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(
    r"^\s*(?:(?P<days>[a-z,\-]+)\s+)?(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s*$"
)
_WINDOW_HELP = "expected e.g. '01:00-05:00', 'mon-fri 01:00-05:00' or 'sat,sun 22:00-06:00'"


def parse_timezone(name: str) -> ZoneInfo:
    """An IANA timezone, or a :class:`ValidationError` on field ``timezone``."""
    try:
        if not name or name != name.strip() or name.startswith(("/", ".")):
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(
            f"unknown timezone {name!r}: expected an IANA name such as 'Europe/Berlin' or 'UTC'",
            field="timezone",
        ) from exc


class WallClockCronTrigger(CronTrigger):
    """APScheduler's cron trigger with one rule for the hour that repeats when clocks go
    back: a wall-clock time fires once, at its first occurrence. (The plain trigger fires
    ``30 2 * * *`` twice that night.) A time that does not exist when clocks go forward
    fires the same span after the jump (02:30 becomes 03:30), as ``zoneinfo`` resolves it.
    Fire times are returned normalised to the zone's real offset."""

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        fire = super().get_next_fire_time(previous_fire_time, now)
        while fire is not None:
            local = fire.astimezone(UTC).astimezone(self.timezone)
            if not (local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()):
                return local
            after = fire.astimezone(UTC) + timedelta(microseconds=1)
            fire = super().get_next_fire_time(fire, after)
        return None


def parse_cron(expr: str, timezone: ZoneInfo) -> CronTrigger:
    """A 5-field crontab expression (minute hour day month weekday) as a trigger in
    ``timezone``, or a :class:`ValidationError` on field ``cron``."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValidationError(
            f"cron {expr!r} has {len(fields)} fields; expected 5 "
            "(minute hour day-of-month month day-of-week), e.g. '0 3 * * *'",
            field="cron",
        )
    try:
        plain = CronTrigger.from_crontab(" ".join(fields), timezone=timezone)
        trigger = WallClockCronTrigger.__new__(WallClockCronTrigger)
        trigger.__setstate__(plain.__getstate__())
        return trigger
    except (ValueError, KeyError, TypeError) as exc:
        raise ValidationError(f"cron {expr!r} does not parse: {exc}", field="cron") from exc


def fire_times(
    trigger: CronTrigger, after: datetime, *, limit: int, until: datetime | None = None
) -> list[datetime]:
    """The next ``limit`` fire times strictly after ``after`` (aware datetimes), the first
    one past ``until`` included."""
    out: list[datetime] = []
    previous: datetime | None = None
    now = after.astimezone(UTC) + timedelta(microseconds=1)
    while len(out) < limit:
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None:
            break
        out.append(fire)
        if until is not None and fire > until:
            break
        # In UTC: wall-clock arithmetic would lose the fold of a repeated hour.
        previous, now = fire, fire.astimezone(UTC) + timedelta(microseconds=1)
    return out


@dataclass(frozen=True)
class MaintenanceWindow:
    """Days of the week (0 = Monday) and a wall-clock span in the schedule's timezone. An end
    before the start crosses midnight: ``sat 22:00-06:00`` holds until Sunday 06:00."""

    days: frozenset[int]
    start: time
    end: time

    def contains(self, local: datetime) -> bool:
        t = local.timetz().replace(tzinfo=None)
        day = local.weekday()
        if self.start < self.end:
            return day in self.days and self.start <= t < self.end
        return (day in self.days and t >= self.start) or (
            (day - 1) % 7 in self.days and t < self.end
        )

    def spec(self) -> str:
        span = f"{self.start:%H:%M}-{self.end:%H:%M}"
        if len(self.days) == 7:
            return span
        return f"{','.join(DAYS[d] for d in sorted(self.days))} {span}"


def parse_window(text: str) -> MaintenanceWindow:
    """Parse a maintenance window; every problem is one error on field ``skip.window``."""
    match = _WINDOW.match(text.lower())
    if match is None:
        raise ValidationError(f"cannot parse window {text!r}: {_WINDOW_HELP}", field="skip.window")
    try:
        start = time.fromisoformat(match["start"].zfill(5))
        end = time.fromisoformat(match["end"].zfill(5))
        days = _days(match["days"]) if match["days"] else frozenset(range(7))
    except ValueError as exc:
        raise ValidationError(
            f"cannot parse window {text!r}: {_WINDOW_HELP}", field="skip.window"
        ) from exc
    if start == end:
        raise ValidationError(f"window {text!r} is empty (start = end)", field="skip.window")
    return MaintenanceWindow(days, start, end)


def _days(text: str) -> frozenset[int]:
    days: set[int] = set()
    for part in filter(None, text.split(",")):
        first, sep, last = part.partition("-")
        a = DAYS.index(first)  # ValueError on an unknown day
        b = DAYS.index(last) if sep else a
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    if not days:
        raise ValueError(text)
    return frozenset(days)


class ScheduleSkip(BaseModel):
    """When a firing is skipped, beyond the rules that always hold (the engine is busy with a
    rollout or tuning run, or its health check fails)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    window: str | None = Field(
        None,
        max_length=100,
        description="Fire only inside this maintenance window, in the schedule's timezone, "
        "e.g. `mon-fri 01:00-05:00`.",
    )
    min_rps: float | None = Field(
        None,
        ge=0,
        le=1_000_000,
        description="Live load mode only: skip when the engine's traffic (requests/s, from "
        "the stored samples) is below this floor.",
    )
    traffic_window_s: float = Field(
        300.0, ge=10, le=86_400, description="How far back the traffic floor looks."
    )

    @field_validator("window")
    @classmethod
    def _window_parses(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return parse_window(value).spec()
        except ValidationError as exc:
            raise ValueError(str(exc)) from None

    def maintenance_window(self) -> MaintenanceWindow | None:
        return parse_window(self.window) if self.window else None


class ScheduleCreate(InputModel):
    """A scheduled tuning run: ``spec`` is the body ``POST /engines/{engine}/tuning-runs``
    takes, validated the same way."""

    engine: str = Field(min_length=1, max_length=100, description="Engine id or name.")
    name: ScheduleName | None = Field(None, description="Default: `<engine>-<n>`.")
    cron: str = Field(
        min_length=1,
        max_length=128,
        description="5-field crontab: minute hour day-of-month month day-of-week.",
    )
    timezone: str = Field("UTC", max_length=64, description="IANA timezone of `cron`.")
    spec: TuningCreate = Field(default_factory=TuningCreate)
    skip: ScheduleSkip = Field(default_factory=ScheduleSkip)
    paused: bool = False

    @field_validator("timezone")
    @classmethod
    def _timezone_exists(cls, value: str) -> str:
        try:
            parse_timezone(value)
        except ValidationError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("cron")
    @classmethod
    def _cron_parses(cls, value: str) -> str:
        try:
            parse_cron(value, ZoneInfo("UTC"))
        except ValidationError as exc:
            raise ValueError(str(exc)) from None
        return " ".join(value.split())

    def trigger(self) -> CronTrigger:
        return parse_cron(self.cron, parse_timezone(self.timezone))


class ScheduleRead(ReadModel):
    id: int
    name: str
    engine_id: int
    cron: str
    timezone: str
    spec: dict[str, Any]
    skip: dict[str, Any]
    paused: bool
    created_by: str
    created: datetime
    updated: datetime
    next_fire: datetime | None = Field(None, description="Next firing (none when paused).")


class ScheduleRunRead(ReadModel):
    """One firing of a schedule."""

    id: int
    job: str
    schedule_id: int | None
    state: str
    reason: str | None
    detail: dict[str, Any]
    error: str | None
    scheduled_for: datetime
    started_at: datetime | None
    finished_at: datetime | None
    tuning_run_id: int | None
