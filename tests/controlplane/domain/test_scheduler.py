from __future__ import annotations

import pytest

from controlplane.domain import IllegalTransitionError
from controlplane.domain import JobRunState
from controlplane.domain.scheduler import JOB_RUN_LIFECYCLE


def test_job_run_lifecycle_walks_every_legal_move_and_refuses_an_illegal_one() -> None:
    assert JOB_RUN_LIFECYCLE.moves() == [
        (JobRunState.started, JobRunState.done),
        (JobRunState.started, JobRunState.failed),
    ]
    for source, target in JOB_RUN_LIFECYCLE.moves():
        JOB_RUN_LIFECYCLE.check(source, target)
    assert JOB_RUN_LIFECYCLE.terminal == {
        JobRunState.done,
        JobRunState.failed,
        JobRunState.skipped,
    }
    with pytest.raises(IllegalTransitionError, match="cannot move from done to failed"):
        JOB_RUN_LIFECYCLE.check(JobRunState.done, JobRunState.failed)
    with pytest.raises(IllegalTransitionError):
        JOB_RUN_LIFECYCLE.check(JobRunState.skipped, JobRunState.started)
