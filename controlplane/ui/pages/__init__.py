"""One router per page family; ``ROUTERS`` is what the app includes."""

from __future__ import annotations

from fastapi import APIRouter

from controlplane.ui.pages import engine
from controlplane.ui.pages import fleet
from controlplane.ui.pages import rollouts
from controlplane.ui.pages import session

ROUTERS: tuple[APIRouter, ...] = (
    session.router,
    fleet.router,
    engine.router,
    rollouts.router,
)
