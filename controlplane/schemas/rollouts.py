from __future__ import annotations

from datetime import datetime
from typing import Any
from typing import Literal

from pydantic import Field

from controlplane.schemas.base import InputModel
from controlplane.schemas.base import ReadModel

ConfigValueIn = int | float | str | bool
Reason = Literal["manual", "tuner", "schedule", "rollback"]


class ApplyRequest(InputModel):
    changes: dict[str, ConfigValueIn] = Field(
        min_length=1, max_length=32, description="Knob -> new value; absent knobs keep theirs."
    )
    bake_s: float | None = Field(None, gt=0, le=86_400, description="Default: CP_GUARD__BAKE_S.")
    dry_run: bool = Field(False, description="Validate and show the plan; change nothing.")
    reason: Reason = "manual"
    canary: str | None = Field(
        None,
        max_length=400,
        description="Canary steps, e.g. '1%:30m,10%:10m,50%:10m' (engines with replicas).",
    )


class RolloutRead(ReadModel):
    id: int
    engine_id: int
    from_config_id: int | None
    to_config_id: int | None
    reason: str
    actor: str
    state: str
    error: str | None
    created: datetime
    updated: datetime
    finished_at: datetime | None
    evidence: dict[str, Any]


class RolloutPlan(ReadModel):
    """What an apply would do (``dry_run``), or did start."""

    engine: str
    from_config: dict[str, Any]
    to_config: dict[str, Any]
    changes: dict[str, Any]
    slos: list[str]
    bake_s: float
    awaiting_approval: bool
    canary: list[str] | None = None
    """The canary's steps (share:hold) when the change goes out as a canary."""
    rollout_id: int | None = None
