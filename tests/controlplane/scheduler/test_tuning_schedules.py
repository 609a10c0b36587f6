"""Tuning schedules on a real database with a scripted engine: what creating one checks (and
that a refusal records nothing), every skip reason, one run per firing, fencing, and the job
run ending with its tuning run. The end-to-end run on the reference engine is in
test_tuning_schedules_live.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func
from sqlalchemy import select

from controlplane.domain import Fence
from controlplane.domain import FencedOutError
from controlplane.domain import RolloutState
from controlplane.domain import Sample
from controlplane.domain import ValidationError
from controlplane.domain import parse_slo
from controlplane.scheduler.tuning_schedules import FireResult
from controlplane.scheduler.tuning_schedules import create_schedule
from controlplane.scheduler.tuning_schedules import fire
from controlplane.scheduler.tuning_schedules import settle
from controlplane.schemas.engines import EngineCreate
from controlplane.schemas.schedules import ScheduleCreate
from controlplane.settings import Settings
from controlplane.store import audit
from controlplane.store import engines
from controlplane.store import jobs
from controlplane.store import rollouts
from controlplane.store import samples
from controlplane.store import schedules
from controlplane.store import slos
from controlplane.store import tuning
from controlplane.store.database import SessionFactory
from controlplane.store.models import ScheduleRow
from tests.fixtures.fake_adapter import FakeEngine

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY_0130 = datetime(2026, 11, 30, 1, 30, tzinfo=SHANGHAI)
TUESDAY_0300 = datetime(2026, 12, 1, 3, 0, tzinfo=SHANGHAI)


@pytest.fixture
def engine(sessions: SessionFactory) -> Iterator[FakeEngine]:
    with FakeEngine(name="fake") as fake:
        with sessions() as s, s.begin():
            data = EngineCreate.model_validate({"name": "fake", "url": fake.url})
            row = engines.add_engine(s, data=data, actor="t")
            slos.set_slo(s, engine_id=row.id, slo=parse_slo("p99_s<=1"), actor="t")
        yield fake


def add(
    sessions: SessionFactory, settings: Settings, fake: FakeEngine, **body: Any
) -> ScheduleRow:
    data = ScheduleCreate.model_validate(
        {"engine": "fake", "cron": "0 3 * * *", "timezone": "Asia/Shanghai", **body}
    )
    with sessions() as s, s.begin():
        return create_schedule(
            s, data, settings=settings, adapter_factory=fake.adapter, actor="alice"
        )


class Firer:
    def __init__(self, sessions: SessionFactory, settings: Settings, engine: FakeEngine) -> None:
        self.sessions, self.settings, self.engine = sessions, settings, engine
        self.submitted: list[int] = []

    def __call__(
        self, schedule_id: int, at: datetime, fence: Fence | None = None, **kw: Any
    ) -> FireResult:
        return fire(
            self.sessions,
            schedule_id,
            at.astimezone(UTC),
            settings=self.settings,
            adapter_factory=self.engine.adapter,
            submit=self.submitted.append,
            fence=fence,
            **kw,
        )


@pytest.fixture
def firer(sessions: SessionFactory, settings: Settings, engine: FakeEngine) -> Firer:
    return Firer(sessions, settings, engine)


def _count(sessions: SessionFactory) -> int:
    with sessions() as s:
        return int(s.scalar(select(func.count()).select_from(ScheduleRow)) or 0)


def test_a_schedule_is_recorded_with_its_spec_and_audited(
    sessions: SessionFactory, settings: Settings, engine: FakeEngine
) -> None:
    row = add(
        sessions, settings, engine,
        spec={"load": "rate=40", "trials": 5, "knobs": ["max_batch_size"]},
        skip={"window": "mon-fri 01:00-05:00"},
    )  # fmt: skip
    assert row.name == "fake-1" and row.spec["load"] == "rate=40,shapes=16x8"
    assert row.skip == {"window": "mon,tue,wed,thu,fri 01:00-05:00"}
    with sessions() as s:
        (event,) = audit.list_events(s, target_type="schedule")
        assert event.action == "schedule.create" and event.actor == "alice"
    assert add(sessions, settings, engine).name == "fake-2"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"engine": "nope"}, "engine", "not found"),
        ({"cron": "*/5 * * * *"}, "cron", "more often than every 15 min"),
        ({"spec": {"knobs": ["warp_drive"]}}, "spec.knobs", "warp_drive"),
        ({"skip": {"min_rps": 5}}, "skip.min_rps", "live load only"),
    ],
)
def test_a_refused_schedule_records_nothing(
    sessions: SessionFactory,
    settings: Settings,
    engine: FakeEngine,
    body: dict[str, Any],
    field: str,
    message: str,
) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        add(sessions, settings, engine, **body)
    assert info.value.field == field
    assert _count(sessions) == 0
    with sessions() as s:
        assert audit.list_events(s, target_type="schedule") == []


def test_a_spec_the_tuner_would_refuse_is_refused(
    sessions: SessionFactory, settings: Settings, engine: FakeEngine
) -> None:
    with sessions() as s, s.begin():
        engine_id = engines.get_engine(s, "fake").id
        for row in slos.list_slos(s, engine_id):
            slos.remove_slo(s, engine_id=engine_id, name=row.name, actor="t")
    with pytest.raises(ValidationError, match="no SLO") as info:
        add(sessions, settings, engine)
    assert info.value.field == "spec.slo" and _count(sessions) == 0


def test_a_firing_starts_a_tuning_run_and_its_job_run_ends_with_it(
    sessions: SessionFactory, settings: Settings, engine: FakeEngine, firer: Firer
) -> None:
    row = add(sessions, settings, engine, spec={"trials": 3})
    result = firer(row.id, TUESDAY_0300)
    assert result.state == "started" and firer.submitted == [result.tuning_run_id]
    with sessions() as s:
        run = tuning.get_run(s, result.tuning_run_id)
        assert run.state == "pending" and run.actor == "schedule:fake-1"
        (job_run,) = jobs.list_runs(s, job=f"schedule:{row.id}")
        assert job_run.state == "started" and job_run.tuning_run_id == run.id
    again = firer(row.id, TUESDAY_0300)
    assert again.state == "duplicate" and len(firer.submitted) == 1
    assert settle(sessions, fence=None) == []  # still running
    with sessions() as s, s.begin():
        run = tuning.get_run(s, result.tuning_run_id)
        tuning.move(s, run, "running", actor="t")
        tuning.move(s, run, "done", actor="t", result={"improvement": 1.5})
    assert settle(sessions, fence=None) == [result.job_run_id]
    with sessions() as s:
        (job_run,) = jobs.list_runs(s, job=f"schedule:{row.id}")
        assert job_run.state == "done" and job_run.detail["improvement"] == 1.5


def test_a_failed_tuning_run_fails_its_job_run(
    sessions: SessionFactory, settings: Settings, engine: FakeEngine, firer: Firer
) -> None:
    row = add(sessions, settings, engine)
    result = firer(row.id, TUESDAY_0300)
    with sessions() as s, s.begin():
        run = tuning.get_run(s, result.tuning_run_id)
        tuning.move(s, run, "running", actor="t")
        tuning.move(s, run, "failed", actor="t", result={"error": "engine gone"})
    settle(sessions, fence=None)
    with sessions() as s:
        (job_run,) = jobs.list_runs(s, job=f"schedule:{row.id}")
        assert job_run.state == "failed"
        assert job_run.error == f"tuning run {run.id} failed: engine gone"


def _skipped(sessions: SessionFactory, row: ScheduleRow, result: FireResult) -> Any:
    assert result.state == "skipped", result
    with sessions() as s:
        (job_run,) = jobs.list_runs(s, job=f"schedule:{row.id}")
    assert job_run.state == "skipped" and job_run.reason == result.reason
    assert job_run.detail["message"] == result.message
    return job_run


def test_skipped_while_a_rollout_is_in_flight(
    sessions: SessionFactory, settings: Settings, engine: FakeEngine, firer: Firer
) -> None:
    row = add(sessions, settings, engine)
    with sessions() as s, s.begin():
        rollout = rollouts.start_rollout(
            s, engine_id=row.engine_id, from_config_id=None, to_config_id=None,
            reason="manual", actor="t",
        )  # fmt: skip
        rollouts.move(s, rollout, RolloutState.applying, actor="t")
    result = firer(row.id, TUESDAY_0300)
    assert result.reason == "engine_busy" and "applying" in result.message
    _skipped(sessions, row, result)
    assert firer.submitted == []


def test_skipped_while_another_tuning_run_is_active(
    sessions: SessionFactory, settings: Settings, engine: FakeEngine, firer: Firer
) -> None:
    row = add(sessions, settings, engine)
    first = firer(row.id, TUESDAY_0300)
    second = firer(row.id, TUESDAY_0300.replace(day=2))
    assert second.reason == "engine_busy"
    assert f"tuning run {first.tuning_run_id} is pending" in second.message


def test_skipped_when_the_engine_is_unhealthy(
    sessions: SessionFactory, settings: Settings, engine: FakeEngine, firer: Firer
) -> None:
    row = add(sessions, settings, engine)
    engine.unreachable = True
    result = firer(row.id, TUESDAY_0300)
    assert result.reason == "engine_unhealthy" and "health check failed" in result.message
    _skipped(sessions, row, result)


def test_skipped_outside_the_maintenance_window_in_the_schedules_timezone(
    sessions: SessionFactory, settings: Settings, engine: FakeEngine, firer: Firer
) -> None:
    row = add(sessions, settings, engine, cron="30 1 * * *", skip={"window": "mon 01:00-02:00"})
    result = firer(row.id, TUESDAY_0300)
    assert result.reason == "outside_window"
    assert result.message == (
        "Tue 03:00 CST is outside the maintenance window mon 01:00-02:00 (Asia/Shanghai)"
    )
    _skipped(sessions, row, result)
    # Monday 01:30 in Shanghai is Sunday 17:30 UTC: inside the window all the same.
    assert MONDAY_0130.astimezone(UTC).weekday() == 6
    assert firer(row.id, MONDAY_0130).state == "started"
    # An operator's run-now may ignore the window.
    with sessions() as s, s.begin():
        run = tuning.get_run(s, firer.submitted[0])
        tuning.move(s, run, "stopped", actor="t")
    assert firer(row.id, TUESDAY_0300.replace(day=8), force=True).state == "started"


def _traffic(sessions: SessionFactory, *, requests: float, over_s: float, end: float) -> None:
    points = [end - over_s, end - over_s / 2, end]
    with sessions() as s, s.begin():
        samples.insert_samples(
            s,
            [
                Sample(ts, "fake", "requests_succeeded_total", (), requests * i / 2)
                for i, ts in enumerate(points)
            ],
        )


def test_skipped_below_the_traffic_floor_in_live_mode(
    sessions: SessionFactory, settings: Settings, engine: FakeEngine, firer: Firer
) -> None:
    row = add(sessions, settings, engine, spec={"load": "live"}, skip={"min_rps": 5})
    now = TUESDAY_0300.astimezone(UTC)
    result = firer(row.id, now, now=now)
    assert result.reason == "low_traffic" and "no stored request samples" in result.message
    _traffic(sessions, requests=100, over_s=100, end=now.timestamp() - 10)
    result = firer(row.id, now.replace(minute=1), now=now)
    assert result.reason == "low_traffic"
    assert result.message == (
        "traffic 1.00 req/s over the last 300 s is below the floor of 5 req/s"
    )
    _traffic(sessions, requests=2000, over_s=100, end=now.timestamp() - 5)
    assert firer(row.id, now.replace(minute=2), now=now).state == "started"


def test_a_deposed_leader_records_no_firing(
    sessions: SessionFactory, settings: Settings, engine: FakeEngine, firer: Firer
) -> None:
    row = add(sessions, settings, engine)
    with sessions() as s, s.begin():
        token = jobs.acquire_or_renew(s, jobs.LEADER_LEASE, "new", 5.0, datetime.now(UTC))
    assert token is not None
    with pytest.raises(FencedOutError):
        firer(row.id, TUESDAY_0300, fence=Fence(jobs.LEADER_LEASE, "old", token))
    engine.unreachable = True
    with pytest.raises(FencedOutError):
        firer(row.id, TUESDAY_0300, fence=Fence(jobs.LEADER_LEASE, "old", token))
    with sessions() as s:
        assert jobs.list_runs(s, job=f"schedule:{row.id}") == []
        assert tuning.list_runs(s) == []
    assert firer.submitted == []


def test_pause_resume_and_remove_are_audited_and_keep_the_history(
    sessions: SessionFactory, settings: Settings, engine: FakeEngine, firer: Firer
) -> None:
    row = add(sessions, settings, engine)
    firer(row.id, TUESDAY_0300)
    with sessions() as s, s.begin():
        found = schedules.get_schedule(s, "fake-1")
        schedules.set_paused(s, found, True, actor="bob")
        schedules.set_paused(s, found, True, actor="bob")  # no-op
        schedules.set_paused(s, found, False, actor="bob")
        schedules.delete_schedule(s, found, actor="bob")
    with sessions() as s:
        actions = [e.action for e in audit.list_events(s, target_type="schedule")]
        assert sorted(actions) == sorted(
            ["schedule.create", "schedule.pause", "schedule.resume", "schedule.delete"]
        )
        (kept,) = jobs.list_runs(s, job=f"schedule:{row.id}")
        assert kept.schedule_id is None


def test_a_timer_firing_of_a_paused_schedule_does_nothing_but_run_now_fires(
    sessions: SessionFactory, settings: Settings, engine: FakeEngine, firer: Firer
) -> None:
    row = add(sessions, settings, engine, paused=True)
    with sessions() as s, s.begin():
        token = jobs.acquire_or_renew(s, jobs.LEADER_LEASE, "leader", 5.0, datetime.now(UTC))
    assert token is not None
    timer = firer(row.id, TUESDAY_0300, fence=Fence(jobs.LEADER_LEASE, "leader", token))
    assert timer.state == "paused"
    with sessions() as s:
        assert jobs.list_runs(s, job=f"schedule:{row.id}") == []
    assert firer(row.id, TUESDAY_0300).state == "started"  # run-now: no fence
