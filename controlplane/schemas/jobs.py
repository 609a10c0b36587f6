"""System jobs and job runs as the API and CLI show them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from controlplane.schemas.base import InputModel
from controlplane.schemas.base import ReadModel


class JobRunRead(ReadModel):
    id: int
    job: str
    schedule_id: int | None
    state: str
    reason: str | None = Field(description="Skip reason code (e.g. `engine_busy`).")
    detail: dict[str, Any]
    error: str | None
    scheduled_for: datetime
    started_at: datetime | None
    finished_at: datetime | None
    fence_token: int | None = Field(description="Leader lease token the run was made under.")
    holder: str | None = Field(description="The process that ran it.")
    tuning_run_id: int | None


class LeaderRead(ReadModel):
    holder: str | None = Field(description="Process holding the leader lease; null: nobody.")
    token: int = Field(description="Fencing token of the current (or last) holder.")
    acquired_at: datetime | None
    expires_at: datetime | None
    live: bool = Field(description="Whether the lease is unexpired now.")


class JobRead(ReadModel):
    name: str
    kind: str
    scope: str = Field(description="`leader`: on the leader only; `every_process`: everywhere.")
    interval_s: float
    enabled: bool
    params: dict[str, Any]
    updated_by: str
    updated: datetime
    last_run: JobRunRead | None = Field(description="Latest recorded run (idle ones are not).")
    next_run_at: datetime | None = Field(description="Next firing time; null when disabled.")


class JobList(ReadModel):
    leader: LeaderRead | None
    jobs: list[JobRead]


class JobUpdate(InputModel):
    interval_s: float | None = Field(
        None, gt=0, le=86_400 * 7, description="Seconds between firings."
    )
    enabled: bool | None = None
