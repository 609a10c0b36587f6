"""Triggers every replica computes alike, so a firing has one name (job, time) everywhere."""

from __future__ import annotations

import math
from datetime import UTC
from datetime import datetime
from datetime import timedelta

from apscheduler.triggers.interval import IntervalTrigger

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # the Unix epoch: 300 s fires at :00, :05, ...


def interval_trigger(interval_s: float) -> IntervalTrigger:
    """Every ``interval_s`` seconds on a grid anchored at a fixed epoch: the firing times do
    not depend on when a process started, so a new leader fires the same times the old one
    would have, and the unique (job, time) constraint recognises a firing already done."""
    return IntervalTrigger(seconds=interval_s, start_date=EPOCH, timezone=UTC)


def next_interval_time(interval_s: float, after: datetime) -> datetime:
    """The first grid time of :func:`interval_trigger` strictly after ``after``."""
    elapsed = (after - EPOCH).total_seconds()
    return EPOCH + timedelta(seconds=(math.floor(elapsed / interval_s) + 1) * interval_s)
