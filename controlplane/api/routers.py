"""Every router, in one place. Anything in ``PROTECTED`` needs a valid token (a viewer at
least) before its own role check runs; only ``PUBLIC`` routes are served without one."""

from __future__ import annotations

from fastapi import APIRouter

from controlplane.api.routes import alerts
from controlplane.api.routes import audit
from controlplane.api.routes import chaos
from controlplane.api.routes import engines
from controlplane.api.routes import health
from controlplane.api.routes import health_watch
from controlplane.api.routes import incidents
from controlplane.api.routes import ingest
from controlplane.api.routes import jobs
from controlplane.api.routes import loadtests
from controlplane.api.routes import me
from controlplane.api.routes import metrics
from controlplane.api.routes import oncall
from controlplane.api.routes import oncall_actions
from controlplane.api.routes import prometheus
from controlplane.api.routes import quality
from controlplane.api.routes import rollouts
from controlplane.api.routes import schedules
from controlplane.api.routes import series
from controlplane.api.routes import slos
from controlplane.api.routes import tuning
from controlplane.api.routes import users

# oncall_actions checks its own credential: the signed, expiring token of the link.
PUBLIC: tuple[APIRouter, ...] = (health.router, metrics.router, oncall_actions.router)
PROTECTED: tuple[APIRouter, ...] = (
    engines.router,
    audit.router,
    me.router,
    series.router,
    ingest.router,
    rollouts.router,
    slos.router,
    tuning.router,
    loadtests.router,
    chaos.router,
    schedules.router,
    health_watch.router,
    jobs.router,
    alerts.router,
    users.router,
    prometheus.router,
    incidents.router,
    oncall.router,
    quality.router,
)
