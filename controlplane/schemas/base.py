from __future__ import annotations

from pydantic import BaseModel
from pydantic import ConfigDict


class InputModel(BaseModel):
    """Inputs: unknown fields are errors, strings are stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ReadModel(BaseModel):
    """Outputs: built from ORM rows; extra attributes are ignored so old clients keep working."""

    model_config = ConfigDict(from_attributes=True)
