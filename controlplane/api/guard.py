"""The guard inside the API process: started with the app (its first act is to reconcile
rollouts a crashed process left behind), stopped with it (rolling back what still bakes)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from controlplane.engines import adapter_for
from controlplane.guard import GuardService
from controlplane.settings import Settings


def install(app: FastAPI) -> None:
    app.state.adapter_factory = adapter_for
    app.state.guard = None


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    service = GuardService(
        sessions=app.state.session_factory,
        policy=settings.guard,
        adapter_factory=app.state.adapter_factory,
    )
    service.start()
    app.state.guard = service
    try:
        yield
    finally:
        app.state.guard = None
        await run_in_threadpool(service.shutdown)
