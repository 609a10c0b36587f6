"""Tuning schedules, the health watch, the detectors and (with a Prometheus configured) the
SLO rule-file job join the scheduler as job sources
(run on the leader); the health watch's counters are served on this app's ``/metrics``."""

from __future__ import annotations

from fastapi import FastAPI

from controlplane.scheduler import SchedulerService
from controlplane.scheduler.detectors import DetectorSource
from controlplane.scheduler.health_watch import HealthWatchSource
from controlplane.scheduler.prometheus_rules import PrometheusRulesSource
from controlplane.scheduler.prometheus_rules import wanted as rules_wanted
from controlplane.scheduler.tuning_schedules import TuningScheduleSource


def install(app: FastAPI) -> None:
    """Call after ``controlplane.api.scheduler.install``."""
    registry = app.state.metrics_registry

    def health_watch(service: SchedulerService) -> HealthWatchSource:
        return HealthWatchSource(service, registry=registry)

    def detectors(service: SchedulerService) -> DetectorSource:
        return DetectorSource(service.settings)

    app.state.scheduler_sources.extend([TuningScheduleSource, health_watch, detectors])

    def prometheus_rules(service: SchedulerService) -> PrometheusRulesSource:
        return PrometheusRulesSource(service.settings)

    if rules_wanted(app.state.settings):
        app.state.scheduler_sources.append(prometheus_rules)
