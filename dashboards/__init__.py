"""Grafana dashboards of the control plane, written with grafana-foundation-sdk.

``build_all()`` returns every dashboard as the JSON model Grafana stores; ``python -m
dashboards.build`` writes them to ``dashboards/json/`` (committed, checked by a test) and
``cplane dashboards push`` uploads them through the Grafana HTTP API.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards import controlplane
from dashboards import engine
from dashboards import fleet
from dashboards import gpu
from dashboards import slo

BUILDERS: dict[str, Callable[[], dash.Dashboard]] = {
    "fleet": fleet.build,
    "engine": engine.build,
    "gpu": gpu.build,
    "slo": slo.build,
    "controlplane": controlplane.build,
}


def to_model(board: dash.Dashboard) -> dict[str, Any]:
    """The plain JSON model (what Grafana's ``/api/dashboards/db`` takes as ``dashboard``)."""
    model: dict[str, Any] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    # Grafana keys panel state (links, edits) by id; the builders leave rows at 0 and panels
    # unset, so number them in layout order.
    for number, panel in enumerate(model.get("panels", []), start=1):
        panel["id"] = number
    return model


def build_all() -> dict[str, dict[str, Any]]:
    """Every dashboard's JSON model, keyed by its file stem."""
    return {name: to_model(make()) for name, make in BUILDERS.items()}


def render(model: dict[str, Any]) -> str:
    """The committed file's text: stable key order, two-space indent, final newline."""
    return json.dumps(model, indent=2, sort_keys=True) + "\n"
