"""An on-call schedule as an iCalendar feed (RFC 5545, the icalendar library): one event per
shift, summary "On call: <person>", times in UTC so every calendar app places them right
whatever its zone. Event UIDs are stable (schedule, person, start), so a calendar that
refreshes the feed updates events instead of duplicating them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from icalendar import Calendar
from icalendar import Event

from controlplane.schemas.oncall import ShiftRead


def schedule_feed(name: str, shifts: Sequence[ShiftRead], *, now: datetime) -> bytes:
    cal = Calendar()
    cal.add("prodid", "-//cplane//on-call//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"On call: {name}")
    for shift in shifts:
        event = Event()
        stamp = int(shift.starts_at.timestamp())
        event.add("uid", f"{name}-{shift.user}-{stamp}@cplane")
        event.add("summary", f"On call: {shift.user}")
        event.add("description", f"{name} ({shift.source})")
        event.add("dtstart", shift.starts_at)
        event.add("dtend", shift.ends_at)
        event.add("dtstamp", now)
        cal.add_component(event)
    return bytes(cal.to_ical())
