from __future__ import annotations

from datetime import datetime

from pydantic import Field
from pydantic import field_validator

from controlplane.domain import DomainError
from controlplane.domain import Role
from controlplane.domain.oncall_schedules import zone
from controlplane.schemas.base import InputModel
from controlplane.schemas.base import ReadModel


class UserRead(ReadModel):
    id: int
    name: str
    role: Role
    disabled: bool
    timezone: str = "UTC"
    created: datetime


class TokenRead(ReadModel):
    id: int
    user_id: int
    name: str
    prefix: str
    created: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class Principal(ReadModel):
    """Who is calling: the user behind an authenticated token."""

    user_id: int
    name: str
    role: Role
    token_id: int | None = None


class UserUpdate(InputModel):
    """Admin only. ``disabled: true`` stops every token of the user at once."""

    disabled: bool | None = None
    role: Role | None = None
    timezone: str | None = Field(
        None, max_length=64, description="IANA zone times in the user's pages are shown in."
    )

    @field_validator("disabled", "role", "timezone", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be omitted but not null")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                zone(value)
            except DomainError as exc:
                raise ValueError(str(exc)) from exc
        return value
