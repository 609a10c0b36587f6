"""Scheduled-job runs: the lifecycle of one firing, and the fence that makes it safe.

``started -> done | failed``; ``skipped`` is created directly (a skip rule said no before any
work began) and never changes. A :class:`Fence` names the leader lease a write was decided
under; the store refuses the write when that lease has since passed to someone else, so a
leader that stalled (GC pause, SIGSTOP, a partition) and wakes up after losing the lease
cannot record or act on a firing its successor now owns.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from controlplane.domain.errors import ConflictError
from controlplane.domain.lifecycle import Lifecycle


class JobRunState(StrEnum):
    started = "started"
    done = "done"
    failed = "failed"
    skipped = "skipped"


JOB_RUN_LIFECYCLE: Lifecycle[JobRunState] = Lifecycle(
    "job_run",
    JobRunState,
    {
        JobRunState.started: {JobRunState.done, JobRunState.failed},
        JobRunState.done: set(),
        JobRunState.failed: set(),
        JobRunState.skipped: set(),
    },
)


class JobScope(StrEnum):
    """Where a job runs: on the leader only, or in every process (host-local work such as
    removing this machine's leftover chaos rules)."""

    leader = "leader"
    every_process = "every_process"


@dataclass(frozen=True, slots=True)
class Fence:
    """The lease a write is made under: its name, the holder and the token it was granted."""

    name: str
    holder: str
    token: int


class FencedOutError(ConflictError):
    """The lease this write was decided under has passed to another holder (HTTP 409)."""
