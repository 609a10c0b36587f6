"""Guard tests on the shared store fixture (SQLite and PostgreSQL, migrated once per session):
the runner's logic on the fake engine and a fake clock on both backends; the end-to-end
paths on a real reference engine process under real load from the project's load generator,
on SQLite only (``SQLITE_ONLY``: the engine, not the store, is what those tests cost)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from controlplane.domain import parse_slo
from controlplane.schemas.engines import EngineCreate
from controlplane.settings import GuardSettings
from controlplane.store import engines
from controlplane.store import slos
from controlplane.store.database import SessionFactory
from controlplane.store.database import make_session_factory
from controlplane.store.database import unit_of_work
from tests.fixtures.engines import RunningEngine
from tests.fixtures.engines import start_engine
from tuner.loadgen import LoadResult
from tuner.loadgen import LoadSpec
from tuner.loadgen import RequestShape
from tuner.loadgen import run_load_sync

FAST = GuardSettings(
    interval_s=0.2,
    baseline_s=1.5,
    warmup_s=0.3,
    bake_s=3.0,
    min_requests=20,
    no_data_timeout_s=1.0,
    unreachable_s=1.0,
    rollback_timeout_s=20.0,
    heartbeat_s=0.3,
    stale_after_s=2.0,
)


@pytest.fixture
def sessions(db_engine: Engine) -> SessionFactory:
    return make_session_factory(db_engine)


@pytest.fixture
def live_engine(tmp_path: Path) -> Iterator[RunningEngine]:
    engine = start_engine(tmp_path, "--batch-size", "8")
    yield engine
    engine.stop()


def register(
    sessions: SessionFactory, engine: RunningEngine, *slo_specs: str, approval: str = "auto"
) -> int:
    with unit_of_work(sessions) as s:
        data = EngineCreate.model_validate(
            {
                "name": "ref",
                "url": engine.url,
                "admin_token": engine.admin_token,
                "approval_mode": approval,
            }
        )
        row = engines.add_engine(s, data=data, actor="t")
        for spec in slo_specs:
            slos.set_slo(s, engine_id=row.id, slo=parse_slo(spec), actor="t")
        return row.id


class Load:
    """Load in a background thread for the length of a test: closed-loop with
    ``concurrency`` users, or open-loop Poisson arrivals at ``rate`` (which, unlike a closed
    loop, keeps arriving when the engine slows down, as real traffic does)."""

    def __init__(
        self,
        url: str,
        *,
        duration_s: float,
        concurrency: int | None = None,
        rate: float | None = None,
        max_tokens: int = 8,
    ):
        spec = LoadSpec(
            base_url=url,
            model="tiny",
            mode="closed" if rate is None else "poisson",
            concurrency=concurrency,
            rate=rate,
            duration_s=duration_s,
            shapes=(RequestShape(prompt_len=16, max_tokens=max_tokens),),
            extra_body={"ignore_eos": True},
        )
        self.result: LoadResult | None = None
        self._thread = threading.Thread(target=self._run, args=(spec,), daemon=True)
        self._thread.start()

    def _run(self, spec: LoadSpec) -> None:
        self.result = run_load_sync(spec)

    def join(self) -> LoadResult:
        self._thread.join(timeout=120)
        assert self.result is not None
        return self.result


def measure(url: str, **kwargs: Any) -> LoadResult:
    return Load(url, **kwargs).join()
