"""Templates: one Jinja2 environment with autoescaping on for every ``.html`` file, so data
(engine names, labels, reasons) always renders as text. Nothing is marked ``|safe``."""

from __future__ import annotations

import json
from datetime import UTC
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment
from jinja2 import FileSystemLoader
from jinja2 import StrictUndefined
from jinja2 import select_autoescape

from controlplane.ui.auth import CSRF_FIELD
from controlplane.ui.auth import UiUser

# (key, label, href, the least role that may open it): the API's own role per resource.
NAV = (
    ("fleet", "Fleet", "/ui/fleet", "viewer"),
    ("rollouts", "Rollouts", "/ui/rollouts", "viewer"),
    ("tuning", "Tuning", "/ui/tuning", "viewer"),
    ("alerts", "Alerts", "/ui/alerts", "viewer"),
    ("oncall", "On-call", "/ui/oncall", "viewer"),
    ("chaos", "Chaos", "/ui/chaos", "admin"),
    ("admin", "Admin", "/ui/admin", "admin"),
)


def _age(value: datetime | None) -> str:
    if value is None:
        return ""
    seconds = max(0.0, (datetime.now(UTC) - value).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{seconds:.0f}s ago"


def _when(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _config_text(config: dict[str, Any] | None) -> str:
    if not config:
        return ""
    return ", ".join(f"{k}={v}" for k, v in sorted(config.items()))


def _num(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}g}"


@lru_cache(maxsize=1)
def environment() -> Environment:
    folder = resources.files("controlplane.ui") / "templates"
    env = Environment(
        loader=FileSystemLoader(str(folder)),
        autoescape=select_autoescape(["html"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["age"] = _age
    env.filters["when"] = _when
    env.filters["config"] = _config_text
    env.filters["num"] = _num
    # Pretty JSON as text (escaped like everything else), for evidence blocks.
    env.filters["pretty"] = lambda value: json.dumps(value, indent=2, sort_keys=True, default=str)
    return env


def page(
    request: Request,
    template: str,
    user: UiUser | None,
    *,
    status_code: int = 200,
    section: str = "",
    **context: Any,
) -> HTMLResponse:
    html = (
        environment()
        .get_template(template)
        .render(
            request=request,
            user=user,
            csrf_field=CSRF_FIELD,
            nav=NAV,
            section=section,
            **context,
        )
    )
    return HTMLResponse(html, status_code=status_code)
