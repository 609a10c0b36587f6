"""Every panel query of every generated dashboard runs against a real Prometheus that scrapes
a real reference engine and a real control plane (see conftest.py), and returns data: no panel
queries a metric that does not exist or a label that is never set."""

from __future__ import annotations

import math
import re

import pytest

from dashboards import build_all
from tests.dashboards.conftest import Stack

pytestmark = pytest.mark.slow

# Values Grafana substitutes at query time: every engine and GPU, the dashboards' defaults.
VARIABLES = {
    "$__rate_interval": "5s",
    "${datasource}": "",
    "$engine": ".*",
    "$gpu": ".*",
}
SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{\[]")


def _substitute(expr: str, defaults: dict[str, str]) -> str:
    for name, value in {**VARIABLES, **defaults}.items():
        expr = expr.replace(name, value)
    return expr


def _targets() -> list[tuple[str, str, str]]:
    """(dashboard, panel, expr) for every target, template variables substituted."""
    out = []
    for name, model in build_all().items():
        defaults = {
            f"${v['name']}": str(v["current"]["value"])
            for v in model["templating"]["list"]
            if v["type"] == "custom"
        }
        for panel in model["panels"]:
            for target in panel.get("targets", []):
                title = f"{panel['title']} [{target['refId']}]"
                out.append((name, title, _substitute(target["expr"], defaults)))
    return out


def test_every_dashboard_has_queries() -> None:
    targets = _targets()
    assert {d for d, _, _ in targets} == set(build_all())
    for dashboard, panel, expr in targets:
        assert "$" not in expr, f"{dashboard}/{panel}: unsubstituted variable in {expr}"
        assert SELECTOR.search(expr), f"{dashboard}/{panel}: no metric selector in {expr}"


def _has_a_number(result: list[object]) -> bool:
    """At least one series with a finite value (a ratio of zero rates is NaN: no data)."""
    for series in result:
        assert isinstance(series, dict)
        value = float(series["value"][1])
        if math.isfinite(value):
            return True
    return False


def test_every_panel_query_returns_data(stack: Stack) -> None:
    # The stack tells a wrong name from a right one (so an empty answer means something).
    assert not stack.query("vllm:no_such_series_total")
    assert stack.query("vllm:request_success_total")
    empty = []
    known: dict[str, bool] = {}
    for dashboard, panel, expr in _targets():
        for metric in SELECTOR.findall(expr):
            if metric not in known:
                known[metric] = bool(stack.query(f"count({metric})"))
        if not _has_a_number(stack.query(expr)):
            empty.append(f"{dashboard}/{panel}: {expr}")
    missing = sorted(m for m, seen in known.items() if not seen)
    assert not missing and not empty, (
        f"metrics Prometheus never scraped: {missing}\n"
        "panels that returned no number:\n" + "\n".join(empty)
    )
