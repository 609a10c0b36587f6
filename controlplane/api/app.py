"""The application factory. Nothing happens at import: the caller passes settings in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends
from fastapi import FastAPI
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

import controlplane
from controlplane import chaos
from controlplane import ui
from controlplane.api import auth_failures
from controlplane.api import collectors
from controlplane.api import errors
from controlplane.api import guard
from controlplane.api import loadtests
from controlplane.api import oncall
from controlplane.api import scheduler
from controlplane.api import schedules
from controlplane.api import store_metrics
from controlplane.api import tuning
from controlplane.api.deps import require
from controlplane.api.params import storable_params
from controlplane.api.routers import PROTECTED
from controlplane.api.routers import PUBLIC
from controlplane.domain import Role
from controlplane.settings import Settings
from controlplane.store.database import check_reachable
from controlplane.store.database import make_engine
from controlplane.store.database import make_session_factory
from controlplane.store.schema import check_schema_current


def create_app(settings: Settings, *, db_engine: Engine | None = None) -> FastAPI:
    """Build the API.

    Raises:
        StoreUnavailableError: the store cannot be reached.
        SchemaOutdatedError: the store needs ``cplane db upgrade`` first.
    """
    engine = db_engine or make_engine(settings)
    check_reachable(engine)
    check_schema_current(engine)

    app = FastAPI(
        title="Inference control plane",
        version=controlplane.__version__,
        description="Observe, tune and guard LLM inference engines.",
        lifespan=_lifespan,
        dependencies=[Depends(storable_params)],
    )
    app.state.settings = settings
    app.state.db_engine = engine
    app.state.session_factory = make_session_factory(engine)
    app.state.read_session_factory = make_session_factory(engine, read_only=True)
    collectors.install(app)
    auth_failures.install(app)
    store_metrics.install(app)
    guard.install(app)
    tuning.install(app)
    loadtests.install(app)
    scheduler.install(app)
    schedules.install(app)
    oncall.install(app)
    errors.install(app, settings.api)
    for router in PUBLIC:
        app.include_router(router)
    for router in PROTECTED:
        app.include_router(router, dependencies=[Depends(require(Role.viewer))])
    # The web UI authenticates with its own session cookie (controlplane.ui.auth).
    ui.install(app)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Chaos leftovers of a crashed process go first: nothing else should run on a network
    # still impaired. Collectors next, so the guard's reconcile runs with metrics flowing;
    # the tuner next, as it drives the guard (and stops before it at shutdown); the scheduler
    # last, as its jobs act through all of them.
    settings: Settings = app.state.settings
    await run_in_threadpool(chaos.sweep_all, settings.chaos, settings.chaos_state_dir, scan=False)
    async with (
        collectors.lifespan(app),
        guard.lifespan(app),
        tuning.lifespan(app),
        loadtests.lifespan(app),
        scheduler.lifespan(app),
    ):
        yield
