"""The scheduler inside the API process: started after the guard and the tuning service (its
jobs act through them), stopped before them.

Other modules add job sources without touching this file: in their ``install(app)`` they
append a factory ``(SchedulerService) -> JobSource`` to ``app.state.scheduler_sources``;
each is registered when the scheduler starts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from collections.abc import Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from controlplane.scheduler import JobSource
from controlplane.scheduler import SchedulerMetrics
from controlplane.scheduler import SchedulerService
from controlplane.settings import Settings

SourceFactory = Callable[[SchedulerService], JobSource]


def install(app: FastAPI) -> None:
    app.state.scheduler = None
    app.state.scheduler_sources = []
    app.state.scheduler_metrics = SchedulerMetrics(app.state.metrics_registry)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    if not settings.scheduler.enabled:
        yield
        return
    service = SchedulerService(
        app.state.session_factory,
        settings,
        guard=app.state.guard,
        tuning=app.state.tuning,
        adapter_factory=app.state.adapter_factory,
        metrics=app.state.scheduler_metrics,
    )
    factories: list[SourceFactory] = app.state.scheduler_sources
    for make in factories:
        service.register_source(make(service))
    await run_in_threadpool(service.start)
    app.state.scheduler = service
    try:
        yield
    finally:
        app.state.scheduler = None
        await run_in_threadpool(service.shutdown)
