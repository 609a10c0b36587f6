"""The control plane itself: guarded rollouts and their outcomes, the health watch's
inference checks, the collectors (scrapes, failures, freshness, the sample
sink) and the scheduler (leader, job runs, skips, lateness), all from its own ``/metrics``.

The scheduler's ``job`` label collides with Prometheus's target label of the same name, so
with the default ``honor_labels: false`` it is stored as ``exported_job``."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash

from dashboards._common import ENGINE
from dashboards._common import engine_variable
from dashboards._common import graph
from dashboards._common import new_dashboard
from dashboards._common import quantile
from dashboards._common import single

UID = "cplane-controlplane"


def build() -> dash.Dashboard:
    return (
        new_dashboard(UID, "Control plane / Control plane", __doc__ or "")
        .with_variable(engine_variable())
        .with_row(dash.Row("Rollouts"))
        .with_panel(
            single(
                "Rollbacks (24h)",
                "short",
                f'sum(increase(cplane_rollouts_total{{{ENGINE},outcome="rolled_back"}}[24h])) '
                "or vector(0)",
                thresholds=[(None, "green"), (1, "orange")],
                width=6,
            )
        )
        .with_panel(
            single(
                "Failed rollouts (24h)",
                "short",
                f'sum(increase(cplane_rollouts_total{{{ENGINE},outcome="failed"}}[24h])) '
                "or vector(0)",
                description="The engine refused the change, or the old config was not restored.",
                thresholds=[(None, "green"), (1, "red")],
                width=6,
            )
        )
        .with_panel(
            graph(
                "Rollouts by outcome (per hour)",
                "short",
                (
                    f"sum by (engine, outcome) (increase(cplane_rollouts_total{{{ENGINE}}}[1h]))",
                    "{{engine}} {{outcome}}",
                ),
                description="Outcomes: committed, rolled_back, failed, reconciled.",
            )
        )
        .with_panel(
            graph(
                "Health watch checks (per hour)",
                "short",
                (
                    f"sum by (engine, outcome) (increase(cplane_health_checks_total{{{ENGINE}}}"
                    "[1h]))",
                    "{{engine}} check {{outcome}}",
                ),
                width=24,
            )
        )
        .with_row(dash.Row("Collectors"))
        .with_panel(
            graph(
                "Scrapes and failures per second",
                "ops",
                (
                    "sum by (collector) (rate(cplane_collector_scrapes_total[$__rate_interval]))",
                    "{{collector}} scrapes",
                ),
                (
                    "sum by (collector, reason) "
                    "(rate(cplane_collector_scrape_failures_total[$__rate_interval]))",
                    "{{collector}} failed: {{reason}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Scrape duration p99 and staleness",
                "s",
                (
                    quantile(0.99, "cplane_collector_scrape_duration_seconds", "", "collector"),
                    "{{collector}} p99",
                ),
                (
                    "max by (collector, target) "
                    '(time() - cplane_collector_last_success_timestamp_seconds{target!=""})',
                    "{{target}} since last success",
                ),
            )
        )
        .with_panel(
            graph(
                "Sample sink",
                "short",
                ("sum(rate(cplane_sink_written_samples_total[$__rate_interval]))", "written/s"),
                ("sum(rate(cplane_sink_dropped_samples_total[$__rate_interval]))", "dropped/s"),
                ("sum(rate(cplane_sink_write_failures_total[$__rate_interval]))", "failures/s"),
            )
        )
        .with_panel(
            graph(
                "Sink buffer fill",
                "percentunit",
                (
                    'max(cplane_sink_buffer_samples{job!=""}) / '
                    'max(cplane_sink_buffer_capacity_samples{job!=""})',
                    "fill",
                ),
            )
        )
        .with_row(dash.Row("Scheduler"))
        .with_panel(
            single(
                "Leaders",
                "short",
                'sum(cplane_scheduler_is_leader{job!=""})',
                description="Exactly 1 when healthy: 0 means no periodic job runs.",
                thresholds=[(None, "red"), (1, "green"), (2, "red")],
            )
        )
        .with_panel(
            graph(
                "Job runs by outcome (per 5 minutes)",
                "short",
                (
                    "sum by (exported_job, outcome) "
                    "(increase(cplane_scheduler_job_runs_total[5m]))",
                    "{{exported_job}} {{outcome}}",
                ),
                width=10,
            )
        )
        .with_panel(
            graph(
                "Firing lateness p99 and time since last success",
                "s",
                (quantile(0.99, "cplane_scheduler_firing_lateness_seconds", "", "job"), "p99"),
                (
                    "time() - max by (exported_job) "
                    '(cplane_scheduler_last_success_timestamp_seconds{exported_job!=""})',
                    "{{exported_job}}",
                ),
                width=10,
            )
        )
    )
