"""``/metrics``: the control plane's own Prometheus endpoint (GPU and host series, collector
health). Public like any exporter, and left out of the OpenAPI schema: it is not JSON."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi import Request
from fastapi import Response
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client import CollectorRegistry
from prometheus_client import generate_latest

router = APIRouter(tags=["Metrics"])


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
