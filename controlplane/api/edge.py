"""The edge of the API, before any route, dependency or token check runs.

Request bodies are counted as they arrive and refused past a limit with 413: a declared
``Content-Length`` over it is answered before a byte of the body is read, a chunked body the
moment the count passes it. Without this, FastAPI reads and parses a whole body before it
resolves the token dependency, so anyone who can reach the port could make the server hold
any amount of memory.

An exception no handler maps becomes a JSON 500 logged with its traceback. Starlette's own
last-resort handler re-raises after answering, which makes uvicorn close the keep-alive
connection under the client; this middleware sits inside it and swallows the exception once
the answer is sent.

Both are plain ASGI (not ``BaseHTTPMiddleware``) so they see the body as it streams in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp
from starlette.types import Message
from starlette.types import Receive
from starlette.types import Scope
from starlette.types import Send

log = logging.getLogger(__name__)

INGEST_PATH = "/api/v1/ingest"


class BodyTooLargeError(HTTPException):
    """Raised from ``receive`` once a body passes its limit. An ``HTTPException`` so that
    FastAPI's body reader lets it through (it turns other exceptions into a 400) and the app's
    handler answers it as JSON."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large_message(limit))


def too_large_message(limit: int) -> str:
    return f"request body too large: this route accepts at most {limit} bytes"


def body_limit(scope: Scope, *, default: int, ingest: int) -> int:
    """Ingest batches get the large limit, and only with credentials: every route that takes
    a body needs a token, so a request without one gets the small limit whatever its path."""
    if scope.get("path") == INGEST_PATH and "authorization" in Headers(scope=scope):
        return ingest
    return default


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, limit_for: Callable[[Scope], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isascii() and declared.isdigit():
            if int(declared) > limit:
                await _refuse(limit, scope, receive, send)
                return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLargeError:
            # Read outside a route (no handler in between): answer here.
            if started:
                raise
            await _refuse(limit, scope, receive, send)


async def _refuse(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    response = JSONResponse({"detail": too_large_message(limit)}, status_code=413)
    await response(scope, receive, send)


class UnexpectedErrorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.error(
                "unhandled error on %s %s", scope.get("method"), scope.get("path"), exc_info=exc
            )
            if started:
                raise  # half a response is out: only closing the connection is honest
            response = JSONResponse(
                {"detail": "internal error; see the control plane's log"}, status_code=500
            )
            await response(scope, receive, send)
