"""Collectors inside the API process: the export registry always (``/metrics`` answers even
with collectors off), the collector threads only when ``collectors.enabled`` is set. They
start and stop with the app's lifespan, never at import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from collectors import CollectorHealth
from collectors import CollectorRuntime
from collectors import sql_writer
from collectors import store_targets
from controlplane.settings import Settings
from controlplane.store.database import SessionFactory


def install(app: FastAPI) -> None:
    registry = CollectorRegistry()
    app.state.metrics_registry = registry
    app.state.collector_health = CollectorHealth(registry)
    app.state.collectors = None


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    runtime: CollectorRuntime | None = None
    if settings.collectors.enabled:
        factory: SessionFactory = app.state.session_factory
        runtime = CollectorRuntime(
            settings.collectors,
            writer=sql_writer(factory),
            targets=store_targets(factory),
            health=app.state.collector_health,
        )
        runtime.start()
        app.state.collectors = runtime
    try:
        yield
    finally:
        if runtime is not None:
            app.state.collectors = None
            runtime.close()
