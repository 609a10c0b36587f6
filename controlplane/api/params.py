"""Path and query parameters shared by the routers, each bounded at the edge.

An id past the key range can name no row, and a reference outside the grammar of ids and
names can name no engine: both are a 422 naming the parameter before the store sees them.
"""

from __future__ import annotations

from typing import Annotated
from typing import Any

from fastapi import Path
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator

from controlplane.domain.ids import MAX_ROW_ID
from controlplane.domain.ids import parse_row_id
from controlplane.schemas.base import text_problem

# An id (ASCII digits) or a name (it starts with an ASCII letter, see EngineName).
ENGINE_REF_PATTERN = r"^(?:[0-9]+|[A-Za-z][A-Za-z0-9_.-]*)$"


def _ref_in_range(ref: str) -> str:
    if ref.isdigit() and parse_row_id(ref) is None:
        raise ValueError(f"an id must be between 1 and {MAX_ROW_ID}")
    return ref


EngineRef = Annotated[
    str,
    Path(
        description="Engine id or name.",
        min_length=1,
        max_length=100,
        pattern=ENGINE_REF_PATTERN,
    ),
    AfterValidator(_ref_in_range),
]
# Schedule names follow the engine-name grammar.
ScheduleRef = Annotated[
    str,
    Path(
        description="Schedule id or name.",
        min_length=1,
        max_length=128,
        pattern=ENGINE_REF_PATTERN,
    ),
    AfterValidator(_ref_in_range),
]
# On-call schedules, escalation policies and routes: an id or a name, like schedules.
OncallRef = Annotated[
    str,
    Path(
        description="Id or name.",
        min_length=1,
        max_length=100,
        pattern=ENGINE_REF_PATTERN,
    ),
    AfterValidator(_ref_in_range),
]
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]


def storable_params(request: Request) -> None:
    """Refuses NUL (``%00``) in any query or path parameter, for every route at once: a string
    parameter reaches SQL, and PostgreSQL refuses NUL in text."""
    errors: list[dict[str, Any]] = []
    for where, items in (
        ("query", request.query_params.multi_items()),
        ("path", list(request.path_params.items())),
    ):
        for name, value in items:
            problem = text_problem(str(name)) or text_problem(str(value))
            if problem is not None:
                errors.append(
                    {"loc": (where, name), "msg": problem, "type": "value_error", "input": None}
                )
    if errors:
        raise RequestValidationError(errors)
