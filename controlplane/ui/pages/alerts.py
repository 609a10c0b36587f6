"""Alerts as the control plane stores them (Alertmanager's webhook, guard events, the
built-in detectors), under the open incidents they make: open incidents first, then firing
alerts, then the most recently resolved."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Query
from fastapi import Request
from fastapi.responses import Response

from controlplane.api.deps import SessionDep
from controlplane.domain.alerts import AlertState
from controlplane.store import alerts
from controlplane.ui.auth import UiViewer
from controlplane.ui.pages.oncall import incident_rows
from controlplane.ui.render import page

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("/alerts")
def alert_list(
    request: Request,
    session: SessionDep,
    user: UiViewer,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> Response:
    with session.begin():
        firing = alerts.list_alerts(session, status=AlertState.firing, limit=limit)
        resolved = alerts.list_alerts(session, status=AlertState.resolved, limit=limit)
        open_incidents, resolved_incidents = incident_rows(session)
    return page(
        request,
        "incidents.html",
        user,
        section="alerts",
        firing=firing,
        resolved=resolved,
        open_incidents=open_incidents,
        resolved_incidents=resolved_incidents,
    )
