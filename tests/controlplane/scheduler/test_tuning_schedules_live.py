"""A scheduled tuning run end to end on the real reference engine: a schedule created with
``cplane schedule add``, the scheduler timing its cron in its timezone, the firing at that
computed time (called directly, no cron waited out) starting a short tuning run through the
real tuning service and guard, and the job run ending ``done`` with its tuning run."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from controlplane.domain import parse_slo
from controlplane.guard import GuardService
from controlplane.scheduler import SchedulerService
from controlplane.scheduler.tuning_schedules import TuningScheduleSource
from controlplane.scheduler.tuning_schedules import next_fire
from controlplane.schemas.engines import EngineCreate
from controlplane.settings import SchedulerSettings
from controlplane.settings import Settings
from controlplane.store import engines
from controlplane.store import jobs
from controlplane.store import schedules
from controlplane.store import slos
from controlplane.store import tuning
from controlplane.store.database import SessionFactory
from controlplane.store.database import secret_box
from tests.controlplane.scheduler.conftest import FakeClock
from tests.fixtures.cli import Run
from tests.fixtures.engines import RunningEngine
from tests.fixtures.engines import start_engine
from tests.tuner.conftest import FAST_GUARD
from tests.tuner.conftest import FAST_TUNER
from tuner import Tuner
from tuner import TuningService
from tuner import storage_url

pytestmark = pytest.mark.slow


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[RunningEngine]:
    e = start_engine(tmp_path, "--batch-size", "1")
    yield e
    e.stop()


def test_a_schedule_fires_at_its_cron_time_and_its_tuning_run_completes(
    db_engine: Engine,
    sessions: SessionFactory,
    tmp_path: Path,
    engine: RunningEngine,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(
        database_url=db_engine.url.render_as_string(hide_password=False),
        data_dir=tmp_path,
        guard=FAST_GUARD,
        tuner=FAST_TUNER,
        scheduler=SchedulerSettings(lease_s=30.0, refresh_s=3600.0),
    )
    with sessions() as s, s.begin():
        data = EngineCreate.model_validate(
            {"name": "ref", "url": engine.url, "admin_token": engine.admin_token}
        )
        row = engines.add_engine(s, data=data, actor="t")
        slos.set_slo(s, engine_id=row.id, slo=parse_slo("p99_s<=5"), actor="t")
    # Created from the command line, as an operator would.
    monkeypatch.setenv("CP_DATABASE_URL", settings.database_url or "")
    monkeypatch.setenv("CP_DATA_DIR", str(tmp_path))
    # The engine's admin token was sealed with the test store's key: the CLI needs the same.
    monkeypatch.setenv("CP_SECRET_KEY_FILE", str(secret_box(db_engine).key_file))
    code, out, err = Run(capsys)(
        "schedule", "add", "ref", "--cron", "0 3 * * *", "--tz", "Asia/Shanghai", "--tune",
        "load=concurrency=4,shapes=16x8,trials=2,knob=max_batch_size,seed=1,apply=false",
    )  # fmt: skip
    assert code == 0, err
    with sessions() as s:
        schedule_id = schedules.get_schedule(s, "ref-1").id
    url = storage_url(db_engine)
    guard = GuardService(sessions=sessions, policy=settings.guard)
    tuning_service = TuningService(
        lambda: Tuner(session_factory=sessions, storage_url=url, settings=settings)
    )
    clock = FakeClock()
    service = SchedulerService(
        sessions, settings, guard=guard, tuning=tuning_service, clock=clock, holder="leader"
    )
    service.register_source(TuningScheduleSource(service))
    guard.start()
    job_id = f"schedule:{schedule_id}"
    try:
        service.start()  # real timing; the cron's next time is hours away
        deadline = time.monotonic() + 20
        while not service.is_leader and time.monotonic() < deadline:
            time.sleep(0.1)
        service.refresh()
        with sessions() as s:
            expected = next_fire(schedules.get_schedule(s, schedule_id), clock())
        assert expected is not None
        assert expected.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%H:%M") == "03:00"
        # APScheduler's own next run time for the job is the schedule's cron time.
        timed = service.next_run_time(job_id)
        assert timed is not None and timed == expected

        outcome = service.fire(job_id, expected)
        assert outcome.state == "done", outcome
        run_id = outcome.detail["tuning_run_id"]
        assert service.fire(job_id, expected).state == "duplicate"

        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            with sessions() as s:
                state = tuning.get_run(s, run_id).state
            if state in tuning.TERMINAL_STATES:
                break
            time.sleep(0.5)
        assert state == "done"
        service.fire("schedule_settle", clock())
        with sessions() as s:
            (job_run,) = jobs.list_runs(s, job=job_id)
            assert job_run.state == "done" and job_run.tuning_run_id == run_id
            assert job_run.scheduled_for == expected
            assert tuning.get_run(s, run_id).actor.startswith("schedule:")
    finally:
        service.shutdown()
        tuning_service.shutdown()
        guard.shutdown()
