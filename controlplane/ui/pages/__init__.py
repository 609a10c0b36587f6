"""One router per page family; ``ROUTERS`` is what the app includes."""

from __future__ import annotations

from fastapi import APIRouter

from controlplane.ui.pages import admin
from controlplane.ui.pages import alerts
from controlplane.ui.pages import chaos
from controlplane.ui.pages import engine
from controlplane.ui.pages import fleet
from controlplane.ui.pages import oncall
from controlplane.ui.pages import rollouts
from controlplane.ui.pages import session
from controlplane.ui.pages import tuning

ROUTERS: tuple[APIRouter, ...] = (
    session.router,
    fleet.router,
    engine.router,
    rollouts.router,
    tuning.router,
    alerts.router,
    oncall.router,
    chaos.router,
    admin.router,
)
