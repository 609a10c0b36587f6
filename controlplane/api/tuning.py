"""The tuning service inside the API process: orphaned runs of a previous process are swept
at start-up (their RUNNING trials failed, the runs marked interrupted and resumable), and the
runs still going are stopped cleanly at shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from controlplane.settings import Settings
from tuner import Tuner
from tuner import TuningService
from tuner import storage_url
from tuner import sweep_orphaned_runs


def install(app: FastAPI) -> None:
    app.state.tuning = None


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    url = storage_url(app.state.db_engine)
    await run_in_threadpool(
        sweep_orphaned_runs,
        app.state.session_factory,
        url=url,
        stale_after_s=settings.tuner.stale_after_s,
    )

    def make() -> Tuner:
        return Tuner(
            session_factory=app.state.session_factory,
            storage_url=url,
            settings=settings,
            adapter_factory=app.state.adapter_factory,
        )

    service = TuningService(make)
    app.state.tuning = service
    try:
        yield
    finally:
        app.state.tuning = None
        await run_in_threadpool(service.shutdown)
