"""Every router, in one place. Anything in ``PROTECTED`` needs a valid token (a viewer at
least) before its own role check runs; only ``PUBLIC`` routes are served without one."""

from __future__ import annotations

from fastapi import APIRouter

from controlplane.api.routes import audit
from controlplane.api.routes import engines
from controlplane.api.routes import health
from controlplane.api.routes import me

PUBLIC: tuple[APIRouter, ...] = (health.router,)
PROTECTED: tuple[APIRouter, ...] = (engines.router, audit.router, me.router)
