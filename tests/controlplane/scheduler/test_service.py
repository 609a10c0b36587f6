"""The scheduler service on a real database with a clock the test moves: who leads, what each
process schedules, one run per firing, fencing of a deposed leader, and each system job doing
its work. Firings are called directly with their scheduled time (no waiting out a timer)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Hashable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client import generate_latest
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from controlplane.domain import JobScope
from controlplane.domain import NotFoundError
from controlplane.domain import Sample
from controlplane.scheduler import Firing
from controlplane.scheduler import Outcome
from controlplane.scheduler import ScheduledJob
from controlplane.scheduler import interval_trigger
from controlplane.scheduler import record_firing
from controlplane.scheduler._executor import FiringExecutor
from controlplane.schemas.engines import EngineCreate
from controlplane.settings import CollectorSettings
from controlplane.settings import Settings
from controlplane.store import engines
from controlplane.store import jobs
from controlplane.store import rollouts
from controlplane.store import samples
from controlplane.store import tuning
from controlplane.store.base import utcnow
from controlplane.store.database import SessionFactory
from controlplane.store.models import JobRunRow
from controlplane.store.models import RolloutRow
from controlplane.store.models import SampleRollupRow
from controlplane.store.models import SampleRow
from controlplane.store.models import TuningRunRow
from tests.controlplane.scheduler.conftest import FakeClock
from tests.controlplane.scheduler.conftest import MakeService

LEADER_JOBS = {"retention", "sweep_tuning", "reconcile"}


def _runs(sessions: SessionFactory, job: str | None = None) -> list[JobRunRow]:
    with sessions() as s, s.begin():
        return jobs.list_runs(s, job=job)


def _metric(service: Any, name: str, **labels: str) -> float:
    value = service.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else float(value)


def _engine_id(sessions: SessionFactory, name: str = "e") -> int:
    data = EngineCreate.model_validate({"name": name, "url": "http://127.0.0.1:1"})
    with sessions() as s, s.begin():
        return engines.add_engine(s, data=data, actor="t").id


def test_the_leader_schedules_leader_jobs_and_every_process_its_host_local_ones(
    make_service: MakeService, clock: FakeClock
) -> None:
    a, b = make_service("a"), make_service("b")
    a.seed()
    assert a.elect() and not b.elect()
    a.refresh()
    b.refresh()
    assert {j.id for j in a.scheduled()} == LEADER_JOBS | {"chaos_sweep"}
    assert {j.id for j in b.scheduled()} == {"chaos_sweep"}
    with pytest.raises(NotFoundError):
        b.fire("retention", clock())
    assert _metric(a, "cplane_scheduler_is_leader") == 1.0
    assert _metric(b, "cplane_scheduler_is_leader") == 0.0

    clock.advance(6)  # a has not renewed: its lease ran out
    assert a.fence is None  # it stops firing by itself, before anyone takes over
    assert a.fire("retention", clock()) == Outcome("not_leader")
    assert b.elect()
    assert b.fence is not None and b.fence.token == 2
    assert not a.elect()  # told: its leader jobs go at once
    assert {j.id for j in a.scheduled()} == {"chaos_sweep"}
    b.refresh()
    assert {j.id for j in b.scheduled()} == LEADER_JOBS | {"chaos_sweep"}
    assert _metric(a, "cplane_scheduler_is_leader") == 0.0


def test_a_firing_is_one_job_run_whoever_fires_it(
    make_service: MakeService, clock: FakeClock, sessions: SessionFactory
) -> None:
    a = make_service("a")
    a.seed()
    a.elect()
    a.refresh()
    at = clock()
    done = a.fire("retention", at)
    assert done.state == "done" and done.run_id is not None
    assert a.fire("retention", at) == Outcome("duplicate")
    (run,) = _runs(sessions, "retention")
    assert (run.state, run.holder, run.fence_token, run.scheduled_for) == ("done", "a", 1, at)
    assert set(run.detail) == {
        "rolled_up_minutes",
        "raw_deleted",
        "rollups_deleted",
        "job_runs_deleted",
        "ui_sessions_deleted",
    }
    assert _metric(a, "cplane_scheduler_job_runs_total", job="retention", outcome="done") == 1
    assert _metric(a, "cplane_scheduler_job_runs_total", job="retention", outcome="duplicate") == 1
    assert _metric(a, "cplane_scheduler_last_success_timestamp_seconds", job="retention") > 0


class _BlockingSource:
    """One leader job whose work waits until the test lets it finish."""

    name = "blocking"
    scope = JobScope.leader

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def version(self, session: Session) -> Hashable:
        return 1

    def load(self, session: Session) -> list[ScheduledJob]:
        return [ScheduledJob("slow", interval_trigger(3600), self._run, signature=1)]

    def _run(self, firing: Firing) -> Outcome:
        def work(_f: Firing) -> dict[str, Any]:
            self.started.set()
            assert self.release.wait(30)
            return {"did": 1}

        return record_firing(firing, work)


def test_a_deposed_leaders_late_write_is_fenced_out_and_its_run_failed_by_the_next(
    make_service: MakeService, clock: FakeClock, sessions: SessionFactory
) -> None:
    source = _BlockingSource()
    a, b = make_service("a", system_jobs=False), make_service("b", system_jobs=False)
    a.register_source(source)
    a.elect()
    a.refresh()
    outcome: list[Outcome] = []
    worker = threading.Thread(target=lambda: outcome.append(a.fire("slow", clock())))
    worker.start()
    assert source.started.wait(10)
    clock.advance(6)  # a stalls past its lease (a GC pause, SIGSTOP, a partition)
    assert b.elect()
    source.release.set()  # a wakes up and tries to record its result
    worker.join(10)
    assert [o.state for o in outcome] == ["fenced"]
    (run,) = _runs(sessions, "slow")
    assert (run.state, run.holder) == ("started", "a")
    assert _metric(a, "cplane_scheduler_job_runs_total", job="slow", outcome="fenced") == 1
    b.refresh()  # the new leader fails what its predecessor left started
    (run,) = _runs(sessions, "slow")
    assert run.state == "failed" and "lost the lease to b" in (run.error or "")


def test_retention_folds_old_raw_samples_into_rollups_and_the_table_stops_growing(
    make_service: MakeService,
    clock: FakeClock,
    sessions: SessionFactory,
    settings: Settings,
) -> None:
    settings.collectors = CollectorSettings(raw_retention_s=3600, rollup_retention_s=3 * 3600)
    a = make_service("a")
    a.seed()
    a.elect()
    a.refresh()
    counts = []
    for _hour in range(6):
        start = clock().timestamp()
        # One hour of one series at one point a minute, as a collector would have written.
        batch = [Sample(start + m * 60, "e", "m", (), float(m)) for m in range(60)]
        with sessions() as s, s.begin():
            samples.insert_samples(s, batch)
        clock.advance(3600)
        assert a.elect()  # renewed meanwhile, as its lease thread would have
        assert a.fire("retention", clock()).state == "done"
        with sessions() as s, s.begin():
            raw = s.scalar(select(func.count()).select_from(SampleRow))
            rollups = s.scalar(select(func.count()).select_from(SampleRollupRow))
        counts.append((raw, rollups))
    raw_counts = [raw for raw, _ in counts]
    assert max(raw_counts) <= 61  # never more than the last hour (plus its boundary minute)
    assert raw_counts[-1] == raw_counts[-2]  # steady state: the table stopped growing
    assert counts[-1][1] == counts[-2][1] > 0  # rollups too: the oldest go after 3 h
    assert counts[-1][1] <= 3 * 60 + 1
    last = _runs(sessions, "retention")[0]
    assert last.detail["raw_deleted"] >= 59 and last.detail["rollups_deleted"] >= 59


def test_sweep_tuning_interrupts_a_stale_run_while_the_server_runs_and_idle_firings_leave_no_row(
    make_service: MakeService, clock: FakeClock, sessions: SessionFactory
) -> None:
    engine_id = _engine_id(sessions)
    with sessions() as s, s.begin():
        run = tuning.create_run(
            s, engine_id=engine_id, study_name="st", objective="goodput", spec={}, actor="t"
        )
        stale = utcnow() - timedelta(minutes=5)
        s.execute(
            update(TuningRunRow)
            .where(TuningRunRow.id == run.id)
            .values(state="running", updated=stale, started_at=stale)
        )
    a = make_service("a")
    a.seed()
    a.elect()
    a.refresh()
    outcome = a.fire("sweep_tuning", clock())
    assert outcome.state == "done" and outcome.detail["interrupted"] == 1
    with sessions() as s, s.begin():
        assert tuning.get_run(s, run.id).state == "interrupted"
    idle = a.fire("sweep_tuning", clock() + timedelta(seconds=10))
    assert idle.state == "idle"
    assert len(_runs(sessions, "sweep_tuning")) == 1  # the idle firing left no row
    assert _metric(a, "cplane_scheduler_job_runs_total", job="sweep_tuning", outcome="idle") == 1


def test_reconcile_settles_a_rollout_abandoned_while_the_server_runs(
    make_service: MakeService, clock: FakeClock, sessions: SessionFactory
) -> None:
    engine_id = _engine_id(sessions)
    with sessions() as s, s.begin():
        row = rollouts.start_rollout(
            s, engine_id=engine_id, from_config_id=None, to_config_id=None, reason="manual",
            actor="t",
        )  # fmt: skip
        s.execute(
            update(RolloutRow)
            .where(RolloutRow.id == row.id)
            .values(heartbeat_at=utcnow() - timedelta(minutes=5))
        )
    a = make_service("a")
    a.seed()
    a.elect()
    a.refresh()
    outcome = a.fire("reconcile", clock())
    assert outcome.state == "done" and outcome.detail["rollout_ids"] == [row.id]
    with sessions() as s, s.begin():
        assert rollouts.get_rollout(s, row.id).state == "failed"


def test_chaos_sweep_runs_in_a_follower_too_and_resumes_a_process_left_paused(
    make_service: MakeService, clock: FakeClock, sessions: SessionFactory, settings: Settings
) -> None:
    a, b = make_service("a"), make_service("b")
    a.seed()
    a.elect()
    b.refresh()  # b follows: only its host-local job is scheduled
    paused = subprocess.Popen(["sleep", "60"])
    try:
        paused.send_signal(signal.SIGSTOP)
        dead = subprocess.Popen(["true"])
        dead.wait()
        state_dir = settings.chaos_state_dir
        state_dir.mkdir(parents=True)
        (state_dir / "x.json").write_text(
            json.dumps(
                {
                    "owner_pid": dead.pid,
                    "deadline": time.time() - 1,
                    "undo": [{"kind": "cont", "pid": paused.pid, "what": "engine"}],
                }
            )
        )
        outcome = b.fire("chaos_sweep", clock())
        assert outcome.state == "done" and outcome.detail["swept"] == 1
        status = Path(f"/proc/{paused.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        assert status != "T"  # continued
        assert not (state_dir / "x.json").exists()
        (run,) = _runs(sessions, "chaos_sweep@")
        assert run.job == "chaos_sweep@b" and run.fence_token is None
        assert b.fire("chaos_sweep", clock() + timedelta(seconds=30)).state == "idle"
    finally:
        paused.kill()
        paused.wait()


def test_apscheduler_times_jobs_on_a_shared_grid_and_follows_edits(
    make_service: MakeService, sessions: SessionFactory
) -> None:
    a = make_service("a")
    a.start()
    assert a.is_leader
    a.refresh()
    nxt = a.next_run_time("reconcile")
    assert nxt is not None and nxt.timestamp() % 5 == 0  # the default 5 s, epoch-aligned
    aps = a._scheduler.get_job("reconcile")
    assert (aps.coalesce, aps.max_instances, aps.misfire_grace_time) == (True, 1, 60)
    with sessions() as s, s.begin():
        jobs.update_job(s, "reconcile", actor="t", interval_s=7.0)
        jobs.update_job(s, "sweep_tuning", actor="t", enabled=False)
    a.refresh()
    nxt = a.next_run_time("reconcile")
    assert nxt is not None and round(nxt.timestamp()) % 7 == 0
    assert a.next_run_time("sweep_tuning") is None
    assert "sweep_tuning" not in {j.id for j in a.scheduled()}
    now = a.run_now("retention")  # what `run-now` does: one firing at the current time
    assert now.state == "done" and _runs(sessions, "retention")[0].id == now.run_id


class _CountingSource:
    name = "counting"
    scope = JobScope.leader

    def __init__(self) -> None:
        self.fired: list[Any] = []

    def version(self, session: Session) -> Hashable:
        return 1

    def load(self, session: Session) -> list[ScheduledJob]:
        return [ScheduledJob("tick", interval_trigger(0.2), self._run, signature=1)]

    def _run(self, firing: Firing) -> Outcome:
        self.fired.append(firing.scheduled_for)
        return Outcome("idle")


def test_the_timer_fires_each_grid_time_once_with_its_scheduled_time(
    make_service: MakeService,
) -> None:
    source = _CountingSource()
    a = make_service("a", system_jobs=False)
    a.register_source(source)
    a.start()
    deadline = time.monotonic() + 20
    while len(source.fired) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    a.shutdown()
    fired = source.fired
    assert len(fired) >= 3 and len(set(fired)) == len(fired)
    assert all(round(t.timestamp() * 1000) % 200 == 0 for t in fired)


def test_scheduler_metrics_pass_promtool(make_service: MakeService, clock: FakeClock) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed")
    a = make_service("a")
    a.seed()
    a.elect()
    a.refresh()
    a.fire("retention", clock())
    a.metrics.skips.labels("schedule:1", "engine_busy").inc()
    text = generate_latest(a.metrics.registry)
    done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in (
        b"cplane_scheduler_job_runs_total",
        b"cplane_scheduler_job_skips_total",
        b"cplane_scheduler_last_success_timestamp_seconds",
        b"cplane_scheduler_is_leader",
    ):
        assert name in text


def test_a_firing_past_its_misfire_grace_is_dropped_and_reported() -> None:
    missed: list[str] = []
    ran: list[datetime] = []
    done = threading.Event()

    def on_missed(job_id: str, _at: datetime) -> None:
        missed.append(job_id)
        done.set()

    scheduler = BackgroundScheduler(
        timezone=UTC, executors={"default": FiringExecutor(on_missed=on_missed)}
    )
    scheduler.start()
    try:

        def job(at: datetime | None = None) -> None:
            ran.append(at or datetime.now(UTC))
            done.set()

        late = datetime.now(UTC) - timedelta(minutes=2)
        scheduler.add_job(job, "date", run_date=late, id="late", misfire_grace_time=60)
        assert done.wait(10)
        done.clear()
        on_time = datetime.now(UTC) + timedelta(seconds=0.2)
        scheduler.add_job(job, "date", run_date=on_time, id="on-time", misfire_grace_time=60)
        assert done.wait(10)
    finally:
        scheduler.shutdown()
    assert missed == ["late"]
    assert ran == [on_time]  # the job is told the time it was scheduled for
