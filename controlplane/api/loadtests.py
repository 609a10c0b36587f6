"""The load-test service inside the API process: load tests a previous process left
``running`` are marked interrupted at start-up, and those still going are stopped at
shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from controlplane.settings import Settings
from tuner.loadtest import LoadTester
from tuner.loadtest import LoadTestService
from tuner.loadtest import sweep_orphaned_load_tests


def install(app: FastAPI) -> None:
    app.state.loadtests = None


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    await run_in_threadpool(
        sweep_orphaned_load_tests,
        app.state.session_factory,
        stale_after_s=settings.tuner.stale_after_s,
    )

    def make() -> LoadTester:
        return LoadTester(
            session_factory=app.state.session_factory,
            settings=settings,
            adapter_factory=app.state.adapter_factory,
        )

    service = LoadTestService(make)
    app.state.loadtests = service
    try:
        yield
    finally:
        app.state.loadtests = None
        await run_in_threadpool(service.shutdown)
