from __future__ import annotations

from datetime import datetime

from controlplane.domain import Role
from controlplane.schemas.base import ReadModel


class UserRead(ReadModel):
    id: int
    name: str
    role: Role
    disabled: bool
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
