"""Tuner tests on the shared store fixture (SQLite and PostgreSQL, migrated once per session;
Optuna's tables in the same database), guard and measurement policies shortened so a whole
tuning run fits in CI. Whole runs on a real reference engine run on SQLite only
(``SQLITE_ONLY``): the engine is what they cost, and the store's side of a run (leases,
sweeps, stop and resume, Optuna's storage) is tested on both backends by the cheap tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from controlplane.domain import EngineTarget
from controlplane.domain import parse_slo
from controlplane.engines import adapter_for
from controlplane.schemas.engines import EngineCreate
from controlplane.schemas.tuning import TuningCreate
from controlplane.settings import GuardSettings
from controlplane.settings import Settings
from controlplane.settings import TunerSettings
from controlplane.store import engines
from controlplane.store import slos
from controlplane.store.database import SessionFactory
from controlplane.store.database import make_session_factory
from controlplane.store.database import unit_of_work
from controlplane.store.models import TuningRunRow
from tests.fixtures.engines import RunningEngine
from tests.fixtures.engines import start_engine
from tuner import start_run
from tuner import storage_url

FAST_GUARD = GuardSettings(
    interval_s=0.2,
    baseline_s=0.8,
    warmup_s=0.3,
    bake_s=1.5,
    min_requests=15,
    no_data_timeout_s=1.0,
    unreachable_s=1.0,
    rollback_timeout_s=20.0,
    heartbeat_s=0.3,
    stale_after_s=2.0,
)
FAST_TUNER = TunerSettings(
    warmup_s=0.3,
    window_s=0.8,
    min_windows=3,
    max_windows=3,
    tolerance=0.1,
    repeats=2,
    lease_s=0.3,
    stale_after_s=2.0,
)


@pytest.fixture
def settings(db_engine: Engine, tmp_path: Path) -> Settings:
    return Settings(
        database_url=storage_url(db_engine), data_dir=tmp_path, guard=FAST_GUARD, tuner=FAST_TUNER
    )


@pytest.fixture
def sessions(db_engine: Engine) -> SessionFactory:
    return make_session_factory(db_engine)


@pytest.fixture
def url(db_engine: Engine) -> str:
    return storage_url(db_engine)


def register(
    sessions: SessionFactory,
    engine_url: str,
    token: str | None,
    *slo_specs: str,
    approval: str = "auto",
) -> int:
    with unit_of_work(sessions) as s:
        data = EngineCreate.model_validate(
            {"name": "ref", "url": engine_url, "admin_token": token, "approval_mode": approval}
        )
        row = engines.add_engine(s, data=data, actor="t")
        for spec in slo_specs:
            slos.set_slo(s, engine_id=row.id, slo=parse_slo(spec), actor="t")
        return row.id


def start(
    sessions: SessionFactory, settings: Settings, adapter: Any, **request: Any
) -> TuningRunRow:
    with unit_of_work(sessions) as s:
        return start_run(
            s,
            engine_ref="ref",
            request=TuningCreate.model_validate(request),
            adapter=adapter,
            policy=settings.tuner,
            actor="t",
        )


@pytest.fixture
def poor_engine(tmp_path: Path) -> Iterator[RunningEngine]:
    """A real engine on a deliberately poor default (batch 1), for whole tuning runs."""
    engine = start_engine(tmp_path, "--batch-size", "1")
    yield engine
    engine.stop()


@pytest.fixture(scope="session")
def _serial_engine_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    engine = start_engine(tmp_path_factory.mktemp("serial"), "--batch-size", "1")
    yield engine
    engine.stop()


@pytest.fixture
def serial_engine(_serial_engine_process: RunningEngine) -> RunningEngine:
    """One real engine for the session, put back on batch 1 (requests served one at a time,
    a poor default with a known curve) before each test that uses it."""
    engine = _serial_engine_process
    target = EngineTarget("ref", "reference", engine.url, admin_token=engine.admin_token)
    adapter = adapter_for(target)
    try:
        if adapter.current_config().get("max_batch_size") != 1:
            adapter.apply({"max_batch_size": 1})
    finally:
        adapter.close()
    return engine


def start_on(
    sessions: SessionFactory, settings: Settings, engine: RunningEngine, **request: Any
) -> TuningRunRow:
    """Registers ``engine`` as "ref" (the guard's SLO p99 <= 5 s) and starts a run on it."""
    register(sessions, engine.url, engine.admin_token, "p99_s<=5")
    target = EngineTarget("ref", "reference", engine.url, admin_token=engine.admin_token)
    adapter = adapter_for(target)
    try:
        return start(sessions, settings, adapter, **request)
    finally:
        adapter.close()


def running_engine_config(engine: RunningEngine) -> dict[str, Any]:
    import httpx

    headers = {"Authorization": f"Bearer {engine.admin_token}"}
    body: dict[str, Any] = httpx.get(f"{engine.url}/admin/config", headers=headers).json()
    return body
