"""Who is on call: rotations across daylight-saving switches (wall-clock handoffs for daily
and weekly rotations, elapsed hours for custom ones), layers with restrictions, overrides,
and the validation of each."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import time
from datetime import timedelta

import pytest

from controlplane.domain import ValidationError
from controlplane.domain.oncall_schedules import Layer
from controlplane.domain.oncall_schedules import Override
from controlplane.domain.oncall_schedules import Restriction
from controlplane.domain.oncall_schedules import RotationKind
from controlplane.domain.oncall_schedules import Schedule
from controlplane.domain.oncall_schedules import zone

BERLIN = "Europe/Berlin"  # 2026-10-25 03:00 CEST -> 02:00 CET; 2026-03-29 02:00 -> 03:00


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def daily(start: datetime, people: tuple[int, ...] = (1, 2, 3), **kw: object) -> Layer:
    return Layer("primary", RotationKind.daily, start, 1, people, **kw)  # type: ignore[arg-type]


def test_daily_handoff_stays_at_nine_local_across_the_autumn_switch() -> None:
    layer = daily(datetime(2026, 10, 20, 9, 0))
    tz = zone(BERLIN)
    # 09:00 CEST = 07:00 UTC before the switch, 09:00 CET = 08:00 UTC after it.
    assert layer.handoff(4, tz) == utc(2026, 10, 24, 7)
    assert layer.handoff(5, tz) == utc(2026, 10, 25, 8)
    assert layer.handoff(5, tz) - layer.handoff(4, tz) == timedelta(hours=25)
    schedule = Schedule("s", BERLIN, (layer,))
    assert schedule.on_call(utc(2026, 10, 25, 7, 30)).user_id == 2  # type: ignore[union-attr]
    assert schedule.on_call(utc(2026, 10, 25, 8, 0)).user_id == 3  # type: ignore[union-attr]


def test_weekly_handoff_across_the_spring_switch_is_an_hour_short() -> None:
    layer = Layer("w", RotationKind.weekly, datetime(2026, 3, 23, 10, 0), 1, (7, 8))
    tz = zone(BERLIN)
    assert layer.handoff(0, tz) == utc(2026, 3, 23, 9)
    assert layer.handoff(1, tz) == utc(2026, 3, 30, 8)
    schedule = Schedule("s", BERLIN, (layer,))
    assert schedule.on_call(utc(2026, 3, 30, 7, 59)).user_id == 7  # type: ignore[union-attr]
    assert schedule.on_call(utc(2026, 3, 30, 8, 0)).user_id == 8  # type: ignore[union-attr]


def test_custom_rotation_counts_elapsed_hours_through_a_switch() -> None:
    layer = Layer("c", RotationKind.custom, datetime(2026, 10, 24, 20, 0), 12, (1, 2))
    tz = zone(BERLIN)
    starts = [layer.handoff(n, tz) for n in range(4)]
    assert all(b - a == timedelta(hours=12) for a, b in zip(starts, starts[1:], strict=False))
    assert layer.shift_index(starts[2] + timedelta(minutes=1), tz) == 2


def test_handoff_in_a_spring_gap_uses_the_offset_before_it() -> None:
    layer = daily(datetime(2026, 3, 7, 2, 30))
    tz = zone("America/New_York")  # 2026-03-08 02:00 EST -> 03:00 EDT
    assert layer.handoff(1, tz) == utc(2026, 3, 8, 7, 30)  # 03:30 EDT
    assert layer.handoff(2, tz) == utc(2026, 3, 9, 6, 30)  # 02:30 EDT


def test_before_the_first_handoff_nobody_is_on_call() -> None:
    schedule = Schedule("s", "UTC", (daily(datetime(2026, 12, 1, 9)),))
    assert schedule.on_call(utc(2026, 12, 1, 8, 59)) is None
    assert schedule.on_call(utc(2026, 12, 1, 9)).user_id == 1  # type: ignore[union-attr]


def test_restricted_layer_covers_office_hours_and_the_base_layer_shows_through() -> None:
    office = Restriction(frozenset(range(5)), time(9), time(18))
    base = Layer("base", RotationKind.weekly, datetime(2026, 11, 30, 0, 0), 1, (1,))
    day = Layer("day", RotationKind.daily, datetime(2026, 11, 30, 9, 0), 1, (5, 6), (office,))
    schedule = Schedule("s", BERLIN, (base, day))
    monday_ten = utc(2026, 11, 30, 9)  # 10:00 CET
    assert schedule.on_call(monday_ten) == schedule.on_call(monday_ten)
    assert schedule.on_call(monday_ten).source == "day"  # type: ignore[union-attr]
    assert schedule.on_call(utc(2026, 11, 30, 17, 0)).user_id == 1  # type: ignore[union-attr]
    assert schedule.on_call(utc(2026, 12, 5, 10)).user_id == 1  # Saturday  # type: ignore[union-attr]


def test_overnight_restriction_belongs_to_the_day_it_starts() -> None:
    night = Restriction(frozenset({4}), time(22), time(6))  # Friday 22:00 - Saturday 06:00
    assert night.active(datetime(2026, 12, 4, 23, 0))  # Friday
    assert night.active(datetime(2026, 12, 5, 5, 59))  # Saturday morning
    assert not night.active(datetime(2026, 12, 5, 23, 0))  # Saturday night
    assert not night.active(datetime(2026, 12, 4, 5, 0))  # Friday morning


def test_override_wins_and_shift_listing_merges() -> None:
    layer = daily(datetime(2026, 12, 1, 9), people=(1, 2))
    cover = Override(9, utc(2026, 12, 2, 12), utc(2026, 12, 2, 14), replaces_user_id=2)
    schedule = Schedule("s", "UTC", (layer,), (cover,))
    assert schedule.on_call(utc(2026, 12, 2, 13)).user_id == 9  # type: ignore[union-attr]
    shifts = schedule.shifts(utc(2026, 12, 1, 9), utc(2026, 12, 3, 9))
    assert [(s.user_id, s.starts_at.hour, s.ends_at.hour) for s in shifts] == [
        (1, 9, 9),
        (2, 9, 12),
        (9, 12, 14),
        (2, 14, 9),
    ]


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        (Schedule("s", "Mars/Olympus"), "timezone"),
        (Schedule("s", "UTC", (daily(datetime(2026, 1, 1), people=()),)), "layers[0]"),
        (
            Schedule("s", "UTC", (), (Override(1, utc(2026, 1, 2), utc(2026, 1, 1)),)),
            "overrides[0]",
        ),
        (
            Schedule(
                "s",
                "UTC",
                (),
                (
                    Override(1, utc(2026, 1, 1), utc(2026, 1, 3)),
                    Override(2, utc(2026, 1, 2), utc(2026, 1, 4)),
                ),
            ),
            "overrides",
        ),
    ],
)
def test_bad_schedules_name_the_field(schedule: Schedule, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        schedule.validate()
    assert err.value.field == field
