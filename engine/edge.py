"""The engine's HTTP edge, before any route runs: a body limit counted while the body is read,
and a last-resort handler that answers an unexpected exception with an OpenAI-style 500.

The inference endpoints need no token, so without the limit anyone who reaches the port
could make the server read and parse any amount of JSON (and tokenize it on the event loop).
A declared ``Content-Length`` over the limit is answered 413 before the body is read; a
chunked body the moment its count passes the limit.

Starlette's own last-resort handler re-raises after answering, which makes uvicorn close the
keep-alive connection; the handler here sits inside it and does not. Plain ASGI (not
``BaseHTTPMiddleware``) so the body is seen as it streams in. The control plane has its own
copy of this idea: the engine imports nothing from it.
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

from engine.errors import error_body

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


class BodyTooLargeError(HTTPException):
    """Raised from ``receive`` past the limit. An ``HTTPException`` so that FastAPI's body
    reader lets it through (it turns other exceptions into a 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large_message(limit))


def too_large_message(limit: int) -> str:
    return f"request body too large: this server accepts at most {limit} bytes"


def too_large_response(limit: int) -> JSONResponse:
    body = error_body(too_large_message(limit), "invalid_request_error", None, "body_too_large")
    return JSONResponse(body, status_code=413)


class BodyLimitMiddleware:
    def __init__(
        self, app: ASGIApp, *, max_bytes: int, on_refused: Callable[[Scope], None]
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.on_refused = on_refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isascii() and declared.isdigit():
            if int(declared) > limit:
                self.on_refused(scope)
                await too_large_response(limit)(scope, receive, send)
                return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    self.on_refused(scope)
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
            if started:
                raise
            await too_large_response(limit)(scope, receive, send)


class UnexpectedErrorMiddleware:
    def __init__(self, app: ASGIApp, *, on_error: Callable[[Scope], None]) -> None:
        self.app = app
        self.on_error = on_error

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
            self.on_error(scope)
            if started:
                raise  # half a response is out: only closing the connection is honest
            body = error_body(
                "internal error; see the engine's log", "internal_error", None, "internal_error"
            )
            await JSONResponse(body, status_code=500)(scope, receive, send)
