"""OpenAI-style error bodies: ``{"error": {"message", "type", "param", "code"}}``.

Clients (the ``openai`` package included) read ``param`` to know which field was wrong, so
every validation error names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from fastapi.responses import JSONResponse


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def error_body(message: str, type_: str, param: str | None, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def from_validation_errors(errors: Sequence[Any], status: int) -> ApiError:
    """The first pydantic error, with its location turned into an OpenAI ``param``."""
    first: Mapping[str, Any] = (
        errors[0] if errors else {"loc": (), "msg": "invalid request", "type": "invalid"}
    )
    loc = [str(part) for part in first.get("loc", ()) if part != "body"]
    kind = str(first.get("type", "invalid"))
    if kind == "json_invalid":
        ctx = first.get("ctx") or {}
        detail = ctx.get("error", first.get("msg", ""))
        return ApiError(status, f"malformed JSON body: {detail}", code="invalid_json")
    # Union members add their type name to the location (e.g. "int"); drop those.
    fields = [part for part in loc if not part.startswith(("function-", "lax-", "json-"))]
    fields = [p for p in fields if p not in {"int", "float", "str", "bool", "StreamOptions"}]
    param = ".".join(fields) or None
    message = f"{param}: {first.get('msg', 'invalid value')}" if param else first.get("msg", "")
    return ApiError(status, str(message), param=param, code=kind)
