"""On-call schedules: who carries the pager at a given instant.

A schedule has a timezone and ordered layers; each layer is a rotation (ordered participants,
a first handoff, a shift length) optionally limited by restrictions (e.g. weekdays
09:00-18:00). At instant T the answer is: an override covering T if there is one, else the
highest layer that is active at T (later layers sit on top, as in PagerDuty), else nobody.

Daylight saving: daily and weekly rotations hand off at the same *wall-clock* time in the
schedule's timezone every day (09:00 stays 09:00 across a switch, so a shift that spans it is
an hour shorter or longer); ``custom`` rotations measure their length in elapsed hours. A
handoff time in a spring-forward gap is read with the offset before the switch (02:30 becomes
03:30); one in a fall-back fold happens at its first occurrence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import time
from datetime import timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo
from zoneinfo import ZoneInfoNotFoundError

from controlplane.domain.errors import ValidationError

MAX_FEED_DAYS = 400  # an iCalendar feed or shift listing covers at most this span


class RotationKind(StrEnum):
    daily = "daily"
    weekly = "weekly"
    custom = "custom"  # ``length`` hours of elapsed time


def zone(name: str, *, field_name: str = "timezone") -> ZoneInfo:
    """The IANA zone ``name``.

    Raises:
        ValidationError: not a known zone.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"{name!r} is not a known IANA timezone", field=field_name) from exc


def localize(wall: datetime, tz: ZoneInfo) -> datetime:
    """The instant of wall-clock time ``wall`` (naive) in ``tz``, as UTC (PEP 495, fold 0).

    A wall time in a fall-back fold (it happens twice) is its first occurrence; one in a
    spring-forward gap (it never happens) is read with the offset before the switch, so
    02:30 on the night clocks jump from 02:00 to 03:00 is 03:30.
    """
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Restriction:
    """Days of the week (0 = Monday) and a wall-clock range in the schedule's zone; an
    ``end`` at or before ``start`` runs past midnight into the next day."""

    days: frozenset[int]
    start: time
    end: time

    def __post_init__(self) -> None:
        if not self.days or any(d < 0 or d > 6 for d in self.days):
            raise ValidationError("restriction days must be 0 (Monday) to 6", field="days")

    def active(self, local: datetime) -> bool:
        t = local.time().replace(tzinfo=None)
        day = local.weekday()
        if self.start < self.end:
            return day in self.days and self.start <= t < self.end
        # Past midnight: the evening part belongs to its own day, the morning to the day before.
        return (day in self.days and t >= self.start) or (
            (day - 1) % 7 in self.days and t < self.end
        )


@dataclass(frozen=True, slots=True)
class Layer:
    """One rotation. ``start`` is the first handoff as wall-clock time in the schedule's
    zone (naive); ``length`` counts days, weeks or hours by ``kind``."""

    name: str
    kind: RotationKind
    start: datetime
    length: int
    participants: tuple[int, ...]
    restrictions: tuple[Restriction, ...] = ()

    def validate(self, where: str) -> None:
        if not self.participants:
            raise ValidationError(f"{where}: a rotation needs participants", field=where)
        if self.length < 1:
            raise ValidationError(f"{where}: length must be at least 1", field=where)
        if self.start.tzinfo is not None:
            raise ValidationError(
                f"{where}: start is a wall-clock time in the schedule's timezone, "
                "without an offset",
                field=where,
            )

    def handoff(self, n: int, tz: ZoneInfo) -> datetime:
        """The instant shift ``n`` begins (shift 0 at ``start``)."""
        if self.kind is RotationKind.custom:
            return localize(self.start, tz) + timedelta(hours=self.length * n)
        days = self.length * (7 if self.kind is RotationKind.weekly else 1)
        return localize(self.start + timedelta(days=days * n), tz)

    def shift_index(self, at: datetime, tz: ZoneInfo) -> int | None:
        """The shift covering ``at``; None before the first handoff."""
        first = self.handoff(0, tz)
        if at < first:
            return None
        if self.kind is RotationKind.custom:
            n = math.floor((at - first) / timedelta(hours=self.length))
        else:
            days = self.length * (7 if self.kind is RotationKind.weekly else 1)
            local = at.astimezone(tz).replace(tzinfo=None)
            n = max(0, math.floor((local - self.start) / timedelta(days=days)))
        # The wall-clock estimate can be one off around a switch: settle it on instants.
        while self.handoff(n + 1, tz) <= at:
            n += 1
        while n > 0 and self.handoff(n, tz) > at:
            n -= 1
        return n

    def active(self, at: datetime, tz: ZoneInfo) -> bool:
        if not self.restrictions:
            return True
        local = at.astimezone(tz)
        return any(r.active(local) for r in self.restrictions)

    def on_call(self, at: datetime, tz: ZoneInfo) -> int | None:
        if not self.active(at, tz):
            return None
        n = self.shift_index(at, tz)
        if n is None:
            return None
        return self.participants[n % len(self.participants)]


@dataclass(frozen=True, slots=True)
class Override:
    """``user_id`` covers the schedule from ``starts_at`` to ``ends_at`` (UTC instants)."""

    user_id: int
    starts_at: datetime
    ends_at: datetime
    replaces_user_id: int | None = None

    def covers(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at


@dataclass(frozen=True, slots=True)
class OnCall:
    user_id: int
    source: str  # "override" or the layer's name


@dataclass(frozen=True, slots=True)
class Shift:
    user_id: int
    starts_at: datetime
    ends_at: datetime
    source: str


@dataclass(frozen=True)
class Schedule:
    name: str
    timezone: str
    layers: tuple[Layer, ...] = ()
    overrides: tuple[Override, ...] = field(default=())

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.timezone)

    def validate(self) -> None:
        """Raises ValidationError naming the field for a schedule that cannot be used."""
        zone(self.timezone)
        for i, layer in enumerate(self.layers):
            layer.validate(f"layers[{i}]")
        validate_overrides(self.overrides)

    def on_call(self, at: datetime) -> OnCall | None:
        """Who is on call at ``at`` (an aware instant); None when nobody is."""
        if at.tzinfo is None:
            raise ValueError("on_call needs an aware datetime")
        for override in self.overrides:
            if override.covers(at):
                return OnCall(override.user_id, "override")
        tz = self.tz
        for layer in reversed(self.layers):
            user = layer.on_call(at, tz)
            if user is not None:
                return OnCall(user, layer.name)
        return None

    def shifts(self, start: datetime, end: datetime) -> list[Shift]:
        """Who is on call from ``start`` to ``end``, as consecutive shifts (gaps left out)."""
        if end <= start:
            return []
        if end - start > timedelta(days=MAX_FEED_DAYS):
            raise ValidationError(
                f"a shift listing covers at most {MAX_FEED_DAYS} days", field="end"
            )
        points = sorted({start, end, *self._breakpoints(start, end)})
        out: list[Shift] = []
        for a, b in zip(points, points[1:], strict=False):
            who = self.on_call(a)
            if who is None:
                continue
            if (
                out
                and out[-1].user_id == who.user_id
                and out[-1].ends_at == a
                and (out[-1].source == who.source)
            ):
                out[-1] = Shift(who.user_id, out[-1].starts_at, b, who.source)
            else:
                out.append(Shift(who.user_id, a, b, who.source))
        return out

    def _breakpoints(self, start: datetime, end: datetime) -> list[datetime]:
        tz = self.tz
        points: list[datetime] = []
        for o in self.overrides:
            points += [t for t in (o.starts_at, o.ends_at) if start < t < end]
        for layer in self.layers:
            n = layer.shift_index(start, tz)
            n = 0 if n is None else n
            while True:
                t = layer.handoff(n, tz)
                if t >= end:
                    break
                if t > start:
                    points.append(t)
                n += 1
            day = start.astimezone(tz).date() - timedelta(days=1)
            last = end.astimezone(tz).date()
            while day <= last:
                for r in layer.restrictions:
                    for edge in (r.start, r.end):
                        t = localize(datetime.combine(day, edge), tz)
                        if start < t < end:
                            points.append(t)
                day += timedelta(days=1)
        return points


def validate_overrides(overrides: tuple[Override, ...] | list[Override]) -> None:
    """Raises ValidationError for an inverted override or two that overlap."""
    for i, o in enumerate(overrides):
        if o.starts_at.tzinfo is None or o.ends_at.tzinfo is None:
            raise ValidationError(
                f"overrides[{i}]: times need a UTC offset", field=f"overrides[{i}]"
            )
        if o.ends_at <= o.starts_at:
            raise ValidationError(
                f"overrides[{i}]: ends_at must be after starts_at", field=f"overrides[{i}]"
            )
    ordered = sorted(overrides, key=lambda o: o.starts_at)
    for a, b in zip(ordered, ordered[1:], strict=False):
        if b.starts_at < a.ends_at:
            raise ValidationError(
                f"overrides overlap: {a.starts_at.isoformat()}-{a.ends_at.isoformat()} and "
                f"{b.starts_at.isoformat()}-{b.ends_at.isoformat()}",
                field="overrides",
            )
