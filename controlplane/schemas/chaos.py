"""Chaos experiments in and out. The fault and target are strings in the CLI's grammar so the
API and ``cplane chaos run`` accept exactly the same specs."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from typing import Literal

from pydantic import Field

from controlplane.schemas.base import InputModel
from controlplane.schemas.base import ReadModel

Expected = Literal["rollback", "hold", "any"]


class ChaosRunCreate(InputModel):
    target: str = Field(
        max_length=256,
        description="`netns:NAME[/DEV][:PORT]`, `host:IFACE[:PORT]` (allowlisted) or `pid:PID`.",
    )
    fault: str = Field(
        max_length=512,
        description="netem-style spec, e.g. `delay 50ms 10ms loss 1%`, `rate 1mbit`, `pause`.",
    )
    duration_s: float = Field(gt=0, le=86_400, description="How long the fault stays.")
    engine: str | None = Field(
        None, max_length=100, description="Engine whose guard reaction is recorded."
    )
    expected: Expected = Field(
        "any", description="Expected guard reaction: a rollback, no rollback (hold), or any."
    )
    hypothesis: list[str] = Field(
        default_factory=list,
        max_length=8,
        description="Steady-state hypothesis as SLO specs, e.g. `p99_ms<=300`.",
    )


class ChaosExperimentRead(ReadModel):
    id: int
    engine_id: int | None
    target: str
    fault: str
    duration_s: float
    expected: str
    hypothesis: dict[str, Any]
    state: str
    mechanisms: dict[str, Any]
    result: dict[str, Any]
    actor: str
    error: str | None
    failed_requests: int | None = Field(
        None, description="Requests the engine failed during the fault (its error counter)."
    )
    slo_violation_s: float | None = Field(
        None, description="Seconds any SLO was violated during the fault, from stored scrapes."
    )
    started_at: datetime | None
    finished_at: datetime | None
    created: datetime
