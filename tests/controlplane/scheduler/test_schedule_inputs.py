"""What a schedule is made of, checked without a store: cron and timezone parsing, fire times
across DST switches, the firing-rate floor, maintenance windows and the ``--tune`` line."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from zoneinfo import ZoneInfo

import pydantic
import pytest

from controlplane.cli.schedules import parse_tune
from controlplane.domain import ValidationError
from controlplane.scheduler.tuning_schedules import check_frequency
from controlplane.schemas.schedules import ScheduleCreate
from controlplane.schemas.schedules import fire_times
from controlplane.schemas.schedules import parse_cron
from controlplane.schemas.schedules import parse_timezone
from controlplane.schemas.schedules import parse_window

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def _hours(times: list[datetime]) -> list[float]:
    utc = [t.astimezone(UTC) for t in times]
    return [(b - a).total_seconds() / 3600 for a, b in zip(utc, utc[1:], strict=False)]


def _local(times: list[datetime], tz: ZoneInfo) -> list[str]:
    return [t.astimezone(tz).strftime("%m-%d %H:%M %Z") for t in times]


def test_a_daily_cron_keeps_its_wall_clock_time_across_spring_forward() -> None:
    # Berlin: 2026-03-29 02:00 CET -> 03:00 CEST.
    times = fire_times(parse_cron("0 3 * * *", BERLIN), datetime(2026, 3, 27, tzinfo=UTC), limit=4)
    assert _local(times, BERLIN) == [
        "03-27 03:00 CET", "03-28 03:00 CET", "03-29 03:00 CEST", "03-30 03:00 CEST"
    ]  # fmt: skip
    assert _hours(times) == [24, 23, 24]


def test_a_time_that_does_not_exist_fires_once_after_the_jump() -> None:
    times = fire_times(
        parse_cron("30 2 * * *", BERLIN), datetime(2026, 3, 28, tzinfo=UTC), limit=3
    )
    assert _local(times, BERLIN) == ["03-28 02:30 CET", "03-29 03:30 CEST", "03-30 02:30 CEST"]


def test_a_repeated_wall_clock_time_fires_once_when_clocks_go_back() -> None:
    # Berlin: 2026-10-25 03:00 CEST -> 02:00 CET; 02:30 happens twice.
    times = fire_times(
        parse_cron("30 2 * * *", BERLIN), datetime(2026, 10, 24, tzinfo=UTC), limit=3
    )
    assert _local(times, BERLIN) == ["10-24 02:30 CEST", "10-25 02:30 CEST", "10-26 02:30 CET"]
    assert _hours(times) == [24, 25]
    # New York switches a week later, at its own 02:00.
    ny = fire_times(
        parse_cron("30 1 * * *", NEW_YORK), datetime(2026, 10, 31, tzinfo=UTC), limit=3
    )
    assert _local(ny, NEW_YORK) == ["10-31 01:30 EDT", "11-01 01:30 EDT", "11-02 01:30 EST"]


def test_fire_times_never_go_back_in_time_through_a_repeated_hour() -> None:
    times = fire_times(
        parse_cron("*/20 * * * *", BERLIN), datetime(2026, 10, 24, 23, 50, tzinfo=UTC), limit=12
    )
    assert times == sorted(times) and len(set(times)) == 12
    walls = [t.astimezone(BERLIN).strftime("%H:%M") for t in times]
    assert len(set(walls)) == len(walls)  # each wall-clock time once


@pytest.mark.parametrize(
    ("cron", "ok"),
    [
        ("0 3 * * *", True),
        ("*/15 * * * *", True),
        ("0,10 3 * * *", False),  # 03:00 and 03:10: ten minutes apart
        ("*/5 * * * *", False),
        ("0 * * * *", True),
    ],
)
def test_the_firing_rate_floor(cron: str, ok: bool) -> None:
    trigger = parse_cron(cron, ZoneInfo("UTC"))
    now = datetime(2026, 12, 1, tzinfo=UTC)
    if ok:
        check_frequency(trigger, floor_s=900, now=now)
        return
    with pytest.raises(ValidationError, match="more often than every 15 min") as info:
        check_frequency(trigger, floor_s=900, now=now)
    assert info.value.field == "cron"


def test_the_floor_looks_a_week_ahead() -> None:
    # Three firings 20 min apart, on Sundays only: refused whatever day it is now.
    trigger = parse_cron("0,20,40 3 * * sun", BERLIN)
    with pytest.raises(ValidationError):
        check_frequency(trigger, floor_s=1800, now=datetime(2026, 12, 1, tzinfo=UTC))  # a Tuesday
    check_frequency(trigger, floor_s=900, now=datetime(2026, 12, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("0 3 * *", "has 4 fields"),
        ("0 3 * * * *", "has 6 fields"),
        ("61 3 * * *", "does not parse"),
        ("0 3 * * funday", "does not parse"),
        ("banana", "has 1 fields"),
    ],
)
def test_a_bad_cron_is_refused_naming_the_field(cron: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        parse_cron(cron, ZoneInfo("UTC"))
    assert info.value.field == "cron"
    with pytest.raises(pydantic.ValidationError) as bad:
        ScheduleCreate.model_validate({"engine": "e", "cron": cron})
    assert bad.value.errors()[0]["loc"] == ("cron",)


@pytest.mark.parametrize("tz", ["Mars/Olympus", "", "../etc/passwd", "Europe/"])
def test_an_unknown_timezone_is_refused(tz: str) -> None:
    with pytest.raises(ValidationError, match="unknown timezone") as info:
        parse_timezone(tz)
    assert info.value.field == "timezone"
    with pytest.raises(pydantic.ValidationError) as bad:
        ScheduleCreate.model_validate({"engine": "e", "cron": "0 3 * * *", "timezone": tz})
    assert bad.value.errors()[0]["loc"] == ("timezone",)


def test_maintenance_windows() -> None:
    weekdays = parse_window("mon-fri 01:00-05:00")
    assert weekdays.spec() == "mon,tue,wed,thu,fri 01:00-05:00"
    monday = datetime(2026, 11, 30, tzinfo=BERLIN)  # a Monday
    assert weekdays.contains(monday.replace(hour=1))
    assert not weekdays.contains(monday.replace(hour=5))
    assert not weekdays.contains(monday.replace(day=29, hour=2))  # Sunday
    overnight = parse_window("sat 22:00-06:00")
    saturday = datetime(2026, 11, 28, tzinfo=BERLIN)
    assert overnight.contains(saturday.replace(hour=23))
    assert overnight.contains(saturday.replace(day=29, hour=5))  # Sunday morning
    assert not overnight.contains(saturday.replace(hour=5))  # Saturday morning
    assert parse_window("03:00-04:00").spec() == "03:00-04:00"
    assert parse_window("fri-mon 03:00-04:00").spec() == "mon,fri,sat,sun 03:00-04:00"


@pytest.mark.parametrize("text", ["noon", "mon 25:00-26:00", "xyz 01:00-02:00", "01:00-01:00"])
def test_a_bad_window_is_refused(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_window(text)
    assert info.value.field == "skip.window"


def test_the_tune_line_is_the_options_of_cplane_tune() -> None:
    request = parse_tune(
        "objective=goodput,slo=p99_ms<=300,load=rate=40,arrivals=poisson,trials=20,"
        "knob=max_batch_size,knob=streams,seed=7,apply=false"
    )
    assert request.objective == "goodput"
    assert request.slo == ["p99_ms<=300"]
    assert request.load == "rate=40,arrivals=poisson,shapes=16x8"
    assert (request.trials, request.seed, request.apply_best) == (20, 7, False)
    assert request.knobs == ["max_batch_size", "streams"]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("colour=blue", "tune"),
        ("trials=many", "tune"),
        ("objective=goodput,objective=p99", "tune"),
        ("objective=fastest", "objective"),
        ("load=rate=-1", "load"),
        ("slo=p99_ms<<300", "slo"),
        ("trials=0", "trials"),
    ],
)
def test_a_bad_tune_line_names_the_field(text: str, field: str) -> None:
    with pytest.raises((ValidationError, pydantic.ValidationError)) as info:
        parse_tune(text)
    if isinstance(info.value, ValidationError):
        assert info.value.field == field
    else:
        assert info.value.errors()[0]["loc"][0] == field
