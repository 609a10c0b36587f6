"""Domain errors and validation failures mapped to HTTP, in one place.

Every error body has one shape, ``{"detail": [{"loc", "msg", "type"}]}`` for 422 and
``{"detail": "<message>"}`` otherwise; the submitted value is never echoed back (it may be a
secret). An exception none of these maps is answered by ``edge.UnexpectedErrorMiddleware``.
"""

from __future__ import annotations

from functools import partial

from fastapi import FastAPI
from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from controlplane.api import edge
from controlplane.domain import ConflictError
from controlplane.domain import DomainError
from controlplane.domain import EngineRejectedError
from controlplane.domain import EngineUnreachableError
from controlplane.domain import NotFoundError
from controlplane.domain import PermissionDeniedError
from controlplane.domain import SchemaOutdatedError
from controlplane.domain import StoreUnavailableError
from controlplane.domain import UnauthenticatedError
from controlplane.domain import ValidationError
from controlplane.settings import ApiSettings

STATUS = {
    EngineRejectedError: 422,
    ValidationError: 422,
    EngineUnreachableError: 502,
    NotFoundError: 404,
    ConflictError: 409,
    UnauthenticatedError: 401,
    PermissionDeniedError: 403,
    StoreUnavailableError: 503,
    SchemaOutdatedError: 503,
}


def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    status = next((code for cls, code in STATUS.items() if isinstance(exc, cls)), 400)
    if isinstance(exc, ValidationError):
        loc = ["body", exc.field] if exc.field else ["body"]
        return JSONResponse(
            {"detail": [{"loc": loc, "msg": str(exc), "type": "value_error"}]}, status_code=422
        )
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    detail = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    return JSONResponse({"detail": jsonable_encoder(detail)}, status_code=422)


def install(app: FastAPI, settings: ApiSettings) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(
        edge.BodyLimitMiddleware,
        limit_for=partial(
            edge.body_limit,
            default=settings.max_body_bytes,
            ingest=settings.max_ingest_body_bytes,
        ),
    )
    app.add_middleware(edge.UnexpectedErrorMiddleware)  # added last: the outermost
