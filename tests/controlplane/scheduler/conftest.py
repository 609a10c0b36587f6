"""A scheduler service on the shared test database, with a clock the test moves."""

from __future__ import annotations

import threading
from collections.abc import Callable
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from controlplane.scheduler import SchedulerService
from controlplane.settings import SchedulerSettings
from controlplane.settings import Settings
from controlplane.store.database import SessionFactory
from controlplane.store.database import make_session_factory


class FakeClock:
    """Time that moves only when told (the lease's and every firing's ``now``)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC).replace(microsecond=0)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sessions(db_engine: Engine) -> SessionFactory:
    return make_session_factory(db_engine)


@pytest.fixture
def settings(db_engine: Engine, tmp_path: Path) -> Settings:
    url = db_engine.url.render_as_string(hide_password=False)
    return Settings(
        database_url=url,
        data_dir=tmp_path,
        scheduler=SchedulerSettings(lease_s=5.0, refresh_s=3600.0),
    )


MakeService = Callable[..., SchedulerService]


@pytest.fixture
def make_service(
    sessions: SessionFactory, settings: Settings, clock: FakeClock
) -> Iterator[MakeService]:
    """``make_service("a")`` -> a service (not started) named ``a``; all are shut down after."""
    made: list[SchedulerService] = []

    def make(holder: str, **kwargs: object) -> SchedulerService:
        service = SchedulerService(sessions, settings, clock=clock, holder=holder, **kwargs)  # type: ignore[arg-type]
        made.append(service)
        return service

    yield make
    for service in made:
        service.shutdown()
