"""Wires the UI into the API's app: its routers, its static files (every asset is served by
the app itself: no CDN, so the UI works on an air-gapped network), the sign-in redirect, and
the security headers of every UI response."""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.responses import RedirectResponse
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp
from starlette.types import Message
from starlette.types import Receive
from starlette.types import Scope
from starlette.types import Send

from controlplane.ui.auth import SignInRequired
from controlplane.ui.auth import sign_in_redirect
from controlplane.ui.pages import ROUTERS

# No inline script or style, no framing, forms post only here.
CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


def _is_ui(path: str) -> bool:
    return path == "/" or path == "/ui" or path.startswith("/ui/")


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_ui(scope.get("path", "")):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in _HEADERS if n not in names]
                if not scope.get("path", "").startswith("/ui/static/"):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def plotly_bundle() -> Path:
    """Plotly.js as the ``plotly`` wheel ships it (a dependency already): served, not copied."""
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


_PLOTLY_SCOPE = ".js-plotly-plot .plotly"
_RULE = re.compile(r'"([^"]+)":(?:\'([^\']*)\'|"([^"]*)")')


@lru_cache(maxsize=1)
def plotly_css() -> str:
    """Plotly.js's own style rules as a stylesheet.

    Plotly adds them at run time in a ``<style>`` element, which ``default-src 'self'``
    refuses (without them its SVG layers do not stack). They are read out of the bundle the
    wheel ships, so they always match the script that is served.
    """
    text = plotly_bundle().read_text(encoding="utf-8")
    start = text.find('"X,X div":')
    if start < 0:
        return ""
    body = text[start : text.find("}", start)]
    rules = []
    for selector, single, double in _RULE.findall(body):
        scoped = selector.replace("X", _PLOTLY_SCOPE)
        rules.append(f"{scoped}{{{single or double}}}")
    return "\n".join(rules) + "\n"


def install(app: FastAPI) -> None:
    static = resources.files("controlplane.ui") / "static"
    app.mount("/ui/static", StaticFiles(directory=str(static)), name="ui-static")
    bundle = plotly_bundle()

    @app.get("/ui/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        return FileResponse(bundle, media_type="text/javascript")

    @app.get("/ui/plotly.css", include_in_schema=False)
    def plotly_stylesheet() -> Response:
        return Response(plotly_css(), media_type="text/css")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/fleet", status_code=303)

    @app.get("/ui", include_in_schema=False)
    def ui_root() -> RedirectResponse:
        return RedirectResponse("/ui/fleet", status_code=303)

    for router in ROUTERS:
        app.include_router(router)
    app.add_exception_handler(SignInRequired, sign_in_redirect)
    app.add_middleware(SecurityHeadersMiddleware)
