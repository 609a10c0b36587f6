from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import SecretStr
from pydantic import field_validator


def text_problem(value: str) -> str | None:
    """Why a string cannot be stored, or ``None``: PostgreSQL refuses NUL in text, and a lone
    surrogate (``"\\ud800"``, legal in JSON) has no UTF-8 form for either backend."""
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must not contain lone surrogate characters"
    return None


def check_storable(value: Any) -> None:
    """Raise ``ValueError`` unless ``value`` (containers included) can be stored on both
    backends."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, str):
        problem = text_problem(value)
        if problem is not None:
            raise ValueError(problem)
    elif isinstance(value, float) and not math.isfinite(value):
        # Python's JSON parser accepts NaN and Infinity; JSON (and PostgreSQL's JSONB) do not.
        raise ValueError("must be a finite number")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_storable(key)
            check_storable(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            check_storable(item)


class InputModel(BaseModel):
    """Inputs: unknown fields are errors, strings are stripped, and every value can be stored
    on both backends (no NUL, no lone surrogate, no NaN or infinity)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        # Every field, nested containers included, so the error names the field.
        check_storable(value)
        return value


class ReadModel(BaseModel):
    """Outputs: built from ORM rows; extra attributes are ignored so old clients keep working."""

    model_config = ConfigDict(from_attributes=True)
