"""The scheduler on ``/metrics``: firings by outcome, skips by reason, the last success per
job, lateness, and whether this process leads. Idle firings of frequent jobs leave no job-run
row; they are counted here (outcome ``idle``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Gauge
from prometheus_client import Histogram


class SchedulerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.runs = Counter(
            "cplane_scheduler_job_runs",
            "Firings handled by this process, by job and outcome "
            "(done, failed, skipped, idle, duplicate, fenced, not_leader, missed).",
            ["job", "outcome"],
            registry=self.registry,
        )
        self.skips = Counter(
            "cplane_scheduler_job_skips",
            "Firings skipped by a skip rule, by job and reason code.",
            ["job", "reason"],
            registry=self.registry,
        )
        self.last_success = Gauge(
            "cplane_scheduler_last_success_timestamp_seconds",
            "Unix time of the last firing of the job that ended done or idle in this process.",
            ["job"],
            registry=self.registry,
        )
        self.is_leader = Gauge(
            "cplane_scheduler_is_leader",
            "1 while this process holds the scheduler's leader lease.",
            registry=self.registry,
        )
        self.lateness = Histogram(
            "cplane_scheduler_firing_lateness_seconds",
            "Time from a firing's scheduled time to the start of its run.",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
            registry=self.registry,
        )
