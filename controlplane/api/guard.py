"""The guard inside the API process: started with the app (its first act is to reconcile
rollouts a crashed process left behind), stopped with it (rolling back what still bakes)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import Counter
from starlette.concurrency import run_in_threadpool

from controlplane.engines import adapter_for
from controlplane.guard import GuardEvent
from controlplane.guard import GuardService
from controlplane.guard.alerting import GuardAlerts
from controlplane.settings import Settings
from controlplane.store import engines
from controlplane.store import rollouts


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
        watching=lambda rollout_id, active: _fast_scrape(app, rollout_id, active),
    )
    _export_outcomes(app, service)
    service.events.subscribe(GuardAlerts(app.state.session_factory))
    service.start()
    app.state.guard = service
    try:
        yield
    finally:
        app.state.guard = None
        await run_in_threadpool(service.shutdown)


def _fast_scrape(app: FastAPI, rollout_id: int, active: bool) -> None:
    """While a rollout bakes, the collectors scrape its engine at the fast rate, so the
    stored series (and dashboards) show the change at the resolution the guard sees it."""
    runtime = app.state.collectors
    if runtime is None:
        return
    with app.state.session_factory() as session:
        row = rollouts.get_rollout(session, rollout_id)
        name = engines.get_engine(session, row.engine_id).name
    try:
        runtime.scraper.set_fast(name, active)
    except KeyError:
        pass  # not scraped (yet): the next target refresh picks it up at the normal rate


def _export_outcomes(app: FastAPI, service: GuardService) -> None:
    """``cplane_rollouts_total{engine, outcome}`` on ``/metrics``, for alert rules such as
    "an engine was rolled back" or "a rollout failed and needs a human"."""
    counter = Counter(
        "cplane_rollouts",
        "Rollouts that reached a terminal state, by engine and outcome.",
        ["engine", "outcome"],
        registry=app.state.metrics_registry,
    )

    def count(event: GuardEvent) -> None:
        if event.kind.startswith("rollout."):  # other kinds (health.rollback) count apart
            counter.labels(event.engine, event.kind.removeprefix("rollout.")).inc()

    service.events.subscribe(count)
