"""Scheduler overhead with 1,000 schedules: the leader's CPU while idle, and how late firings
start when they come due.

The schedules are ``schedules`` rows inserted directly (one engine); a bench job source turns
each into an APScheduler cron trigger in its IANA timezone, as the tuning-schedule source
does, and a firing records a skipped job run (one database write, the cheapest real firing).

1. idle: every schedule fires on 1 January only; the process's CPU time over ``--idle-s``
   (lease renewals, refresh polls, APScheduler's wake-ups) as a share of one core;
2. spread: every schedule fires once a minute at its own second (about 17 firings a second);
   lateness = a firing's start minus its scheduled time, over ``--spread-s``;
3. burst (``--burst``): all 1,000 due at the same minute boundary.

    python bench/scheduler_overhead.py               # SQLite file in a temp dir
    python bench/scheduler_overhead.py --postgres    # a fresh database on CP_TEST_POSTGRES_URL
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Hashable
from datetime import UTC
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script, from anywhere

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import create_engine
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from controlplane.domain import JobScope
from controlplane.scheduler import Firing
from controlplane.scheduler import Outcome
from controlplane.scheduler import ScheduledJob
from controlplane.scheduler import SchedulerService
from controlplane.schemas.engines import EngineCreate
from controlplane.settings import SchedulerSettings
from controlplane.settings import Settings
from controlplane.store import engines
from controlplane.store import jobs
from controlplane.store import schema
from controlplane.store.database import make_engine
from controlplane.store.database import make_session_factory
from controlplane.store.models import ScheduleRow

ADMIN_URL = os.environ.get(
    "CP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
ZONES = ["UTC", "Asia/Shanghai", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]


class BenchSource:
    """``schedules`` rows as cron jobs; the mode picks the triggers (yearly, spread, burst)."""

    name = "bench"
    scope = JobScope.leader

    def __init__(self) -> None:
        self.mode = "idle"
        self.late: list[float] = []
        self._lock = threading.Lock()

    def version(self, session: Session) -> Hashable:
        count, newest = session.execute(select(func.count(), func.max(ScheduleRow.updated))).one()
        return (count, newest, self.mode)

    def load(self, session: Session) -> list[ScheduledJob]:
        out = []
        for row in session.scalars(select(ScheduleRow)):
            zone = ZoneInfo(row.timezone)
            if self.mode == "idle":
                trigger = CronTrigger.from_crontab(row.cron, timezone=zone)
            elif self.mode == "spread":
                trigger = CronTrigger(second=row.id % 60, timezone=zone)
            else:
                trigger = CronTrigger(second=0, timezone=zone)
            out.append(
                ScheduledJob(
                    id=f"schedule:{row.id}",
                    trigger=trigger,
                    run=self._fire,
                    signature=(self.mode, row.cron, row.timezone),
                    schedule_id=row.id,
                    metric_job="schedule",
                )
            )
        return out

    def _fire(self, firing: Firing) -> Outcome:
        late = (datetime.now(UTC) - firing.scheduled_for).total_seconds()
        with self._lock:
            self.late.append(late)
        with firing.sessions() as s, s.begin():
            jobs.skip_run(
                s,
                job=firing.job,
                scheduled_for=firing.scheduled_for,
                fence=firing.fence,
                reason="bench",
                schedule_id=firing.schedule_id,
            )
        return Outcome("skipped", reason="bench")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _lateness(values: list[float]) -> dict[str, float]:
    return {
        "firings": len(values),
        "p50_s": round(statistics.median(values), 3),
        "p99_s": round(_pct(values, 0.99), 3),
        "max_s": round(max(values), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--postgres", action="store_true", help="Use a fresh PostgreSQL database (else SQLite)."
    )
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--idle-s", type=float, default=60.0)
    parser.add_argument("--spread-s", type=float, default=65.0)
    parser.add_argument("--burst", action="store_true")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="cp-sched-"))
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    database = url = None
    if args.postgres:
        database = f"cp_bench_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{database}"'))
        url = make_url(ADMIN_URL).set(database=database).render_as_string(hide_password=False)
    settings = Settings(database_url=url, data_dir=tmp, scheduler=SchedulerSettings())
    engine = make_engine(settings)
    schema.upgrade(engine)
    sessions = make_session_factory(engine)
    with sessions() as s, s.begin():
        data = EngineCreate.model_validate({"name": "bench", "url": "http://127.0.0.1:1"})
        engine_id = engines.add_engine(s, data=data, actor="bench").id
        s.add_all(
            ScheduleRow(
                name=f"bench-{engine_id}-{i}",
                engine_id=engine_id,
                cron="0 3 1 1 *",
                timezone=ZONES[i % len(ZONES)],
                spec={},
                skip={},
                created_by="bench",
            )
            for i in range(args.schedules)
        )
    source = BenchSource()
    service = SchedulerService(sessions, settings)
    service.register_source(source)
    try:
        service.start()
        deadline = time.monotonic() + 30
        while len(service.scheduled()) < args.schedules and time.monotonic() < deadline:
            time.sleep(0.1)
        loaded = len([j for j in service.scheduled() if j.id.startswith("schedule:")])
        time.sleep(2)  # let the start-up settle
        cpu0, wall0 = time.process_time(), time.monotonic()
        time.sleep(args.idle_s)
        idle_share = (time.process_time() - cpu0) / (time.monotonic() - wall0)
        print(f"idle: {loaded} schedules loaded, CPU {idle_share * 100:.2f} % of a core")

        started = time.monotonic()
        source.mode = "spread"
        service.refresh()  # re-reads the 1,000 rows and reschedules every job
        reload_s = time.monotonic() - started
        source.late.clear()
        time.sleep(args.spread_s)
        spread = _lateness(list(source.late))
        print(f"spread: reload {reload_s:.2f} s, lateness {spread}")
        result = {
            "schedules": loaded,
            "backend": engine.dialect.name,
            "idle_cpu_percent_of_core": round(idle_share * 100, 2),
            "reload_s": round(reload_s, 2),
            "spread": spread,
        }
        if args.burst:
            source.mode = "burst"
            service.refresh_soon()
            time.sleep(1)
            source.late.clear()
            wait = 62 - datetime.now(UTC).second  # the next minute boundary, and a bit
            time.sleep(wait + 20)
            result["burst"] = _lateness(list(source.late))
            print(f"burst: lateness {result['burst']}")
        print(json.dumps(result, indent=2))
    finally:
        service.shutdown()
        engine.dispose()
        shutil.rmtree(tmp, ignore_errors=True)
        if database is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
