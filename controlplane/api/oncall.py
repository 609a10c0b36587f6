"""On-call inside the API process: its series on this app's ``/metrics`` and its leader jobs
(escalation, delivery) joining the scheduler."""

from __future__ import annotations

from fastapi import FastAPI

from controlplane.oncall import OncallJobSource
from controlplane.oncall import OncallMetrics
from controlplane.oncall.metrics import OncallStoreMetrics
from controlplane.scheduler import SchedulerService


def install(app: FastAPI) -> None:
    """Call after ``controlplane.api.scheduler.install``."""
    registry = app.state.metrics_registry
    metrics = OncallMetrics(registry)
    app.state.oncall_metrics = metrics
    registry.register(OncallStoreMetrics(app.state.read_session_factory))

    def jobs(service: SchedulerService) -> OncallJobSource:
        return OncallJobSource(service.settings, app.state.session_factory, metrics)

    app.state.scheduler_sources.append(jobs)
