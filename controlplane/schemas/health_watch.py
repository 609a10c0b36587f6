"""An engine's health watch at the edge: its overrides in, its settings and state out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from pydantic import Field

from controlplane.schemas.base import InputModel


class HealthWatchUpdate(InputModel):
    """Overrides to set; a field given as ``null`` goes back to the setting's default, a
    field left out is kept."""

    enabled: bool | None = None
    interval_s: float | None = Field(None, ge=0.2, le=3600, description="Between two checks.")
    failures: int | None = Field(None, ge=1, le=100, description="Failed checks in a row.")
    window_s: float | None = Field(
        None, gt=0, le=86_400 * 30, description="Watched for this long after a commit."
    )

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class HealthWatchRead(BaseModel):
    """The effective settings (overrides over defaults), the overrides, and the state."""

    engine_id: int
    engine: str
    enabled: bool
    interval_s: float
    failures: int
    window_s: float
    timeout_s: float
    overrides: dict[str, Any]
    watched_rollout_id: int | None = None
    consecutive_failures: int = 0
    last_check_at: datetime | None = None
    last_ok_at: datetime | None = None
    last_error: str | None = None
    rollback_rollout_id: int | None = None
