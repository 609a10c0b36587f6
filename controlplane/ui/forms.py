"""Form handling shared by the pages: a form is validated by the API's own pydantic model and
acted on by the API's own function; any refusal becomes a message next to its field and the
form is shown again with what was typed. Nothing is applied unless everything validated."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from typing import TypeVar

import pydantic

from controlplane.domain import DomainError
from controlplane.domain import PermissionDeniedError
from controlplane.domain import UnauthenticatedError
from controlplane.domain import ValidationError

T = TypeVar("T", bound=pydantic.BaseModel)
FORM_ERROR = "_form"


class FormErrors(Exception):
    """Field name -> message; ``_form`` for a refusal that belongs to no single field."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def pydantic_errors(exc: pydantic.ValidationError) -> dict[str, str]:
    out: dict[str, str] = {}
    for err in exc.errors(include_input=False, include_url=False):
        loc = [str(p) for p in err["loc"]]
        # A model's own field, or the key inside a dict field (changes.max_batch_size).
        name = loc[-1] if loc else FORM_ERROR
        if len(loc) >= 2 and loc[0] in {"changes", "labels"}:
            name = loc[1]
        out.setdefault(name, str(err["msg"]).removeprefix("Value error, "))
    return out


def parse(model: type[T], data: dict[str, Any]) -> T:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise FormErrors(pydantic_errors(exc)) from None


def domain_errors(exc: DomainError, default_field: str = FORM_ERROR) -> dict[str, str]:
    field = exc.field if isinstance(exc, ValidationError) and exc.field else default_field
    return {field: str(exc)}


R = TypeVar("R")


def act(action: Callable[[], R], *, default_field: str = FORM_ERROR) -> R:
    """Run the API function behind a form; its refusals become form errors."""
    try:
        return action()
    except (PermissionDeniedError, UnauthenticatedError):
        raise
    except DomainError as exc:
        raise FormErrors(domain_errors(exc, default_field)) from None
    except pydantic.ValidationError as exc:
        raise FormErrors(pydantic_errors(exc)) from None


def typed(value: str) -> int | float | bool | str:
    """A form's text as the JSON value the API would receive: 4 -> 4, 0.5 -> 0.5,
    true -> True; anything else stays text (the adapter's validation decides)."""
    text = value.strip()
    if text.lower() in {"true", "false"}:
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text
