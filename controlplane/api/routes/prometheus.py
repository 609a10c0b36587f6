"""What a Prometheus reads from the control plane: its targets (HTTP service discovery)
and the SLO burn-rate rules. A viewer token is enough: neither carries a secret."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi import Request
from fastapi import Response

from controlplane.api.deps import SessionDep
from controlplane.api.deps import Viewer
from controlplane.prometheus import current_rules
from controlplane.prometheus import discovery
from controlplane.prometheus import engine_entries

router = APIRouter(prefix="/api/v1/prometheus", tags=["Prometheus"])


@router.get("/targets")
def targets(request: Request, session: SessionDep, who: Viewer) -> list[dict[str, Any]]:
    """Prometheus HTTP service discovery (`http_sd_configs`): the control plane itself,
    at the address this request reached, and every registered engine."""
    with session.begin():
        entries = engine_entries(session)
    return [g.as_json() for g in discovery(entries, str(request.base_url))]


@router.get("/rules", response_class=Response, responses={200: {"content": {"text/yaml": {}}}})
def rules(session: SessionDep, who: Viewer) -> Response:
    """The SLO burn-rate rule file, as `cplane prometheus rules` writes it."""
    with session.begin():
        text = current_rules(session)
    return Response(text, media_type="text/yaml")
