"""The tuning service inside the API process: orphaned runs of a previous process are swept
at start-up (their RUNNING trials failed, the runs marked interrupted and resumable), and the
runs still going are stopped cleanly at shutdown."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from collections.abc import Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from controlplane.settings import Settings
from tuner import Tuner
from tuner import TuningService
from tuner import storage_url
from tuner import sweep_orphaned_runs

log = logging.getLogger("controlplane.api")


def _restore_all(make: Callable[[], Tuner], run_ids: list[int]) -> None:
    tuner = make()
    for run_id in run_ids:
        try:
            tuner.restore_pre_study(run_id)
        except Exception:  # noqa: BLE001 - one engine's failure must not skip the others
            log.exception("tuning run %d: pre-study config not restored", run_id)


def install(app: FastAPI) -> None:
    app.state.tuning = None


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    url = storage_url(app.state.db_engine)

    def make() -> Tuner:
        return Tuner(
            session_factory=app.state.session_factory,
            storage_url=url,
            settings=settings,
            adapter_factory=app.state.adapter_factory,
        )

    swept = await run_in_threadpool(
        sweep_orphaned_runs,
        app.state.session_factory,
        url=url,
        stale_after_s=settings.tuner.stale_after_s,
    )
    if swept:
        # Their engines go back to their pre-study configs through the guard, which bakes:
        # not something start-up waits for.
        threading.Thread(
            target=_restore_all, args=(make, swept), name="tuning-restore", daemon=True
        ).start()

    service = TuningService(make)
    app.state.tuning = service
    try:
        yield
    finally:
        app.state.tuning = None
        await run_in_threadpool(service.shutdown)
