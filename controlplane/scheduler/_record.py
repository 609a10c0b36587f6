"""The usual shape of a recorded firing: claim it, do the work, record what it came to.

Claiming first (a ``started`` row, unique per firing) is what makes a firing run at most once
however many processes time it. Work that found nothing to do may be left out of the table
(``keep_idle=False``): the claim is deleted, the firing counted on ``/metrics`` only, so a job
firing every few seconds leaves rows only when it changed something.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from controlplane.domain import FencedOutError
from controlplane.domain import JobRunState
from controlplane.scheduler._types import Firing
from controlplane.scheduler._types import Outcome
from controlplane.store import jobs

log = logging.getLogger("controlplane.scheduler")

Work = Callable[[Firing], dict[str, Any]]


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:2000]


def record_firing(firing: Firing, work: Work, *, keep_idle: bool = True) -> Outcome:
    """Run ``work`` for ``firing`` as one job run: ``started``, then ``done`` with the counts
    ``work`` returns as its detail, or ``failed`` with the exception's first line.

    ``work`` returning only zero / empty values is idle; with ``keep_idle=False`` its row is
    removed again. A firing already claimed elsewhere returns ``duplicate`` without running.

    Raises:
        FencedOutError: the lease was lost before the firing could be claimed or recorded.
    """
    with firing.sessions() as session, session.begin():
        run = jobs.start_run(
            session,
            job=firing.job,
            scheduled_for=firing.scheduled_for,
            fence=firing.fence,
            schedule_id=firing.schedule_id,
        )
        run_id = None if run is None else run.id
    if run is None or run_id is None:
        return Outcome("duplicate")
    try:
        detail = work(firing)
    except FencedOutError:
        raise
    except Exception as exc:  # noqa: BLE001 - a failed job is recorded, not propagated
        error = _one_line(exc)
        log.warning("job %s failed: %s", firing.job, error)
        with firing.sessions() as session, session.begin():
            jobs.finish_run(session, run, JobRunState.failed, error=error, fence=firing.fence)
        return Outcome("failed", run_id=run_id, error=error)
    if not keep_idle and not any(detail.values()):
        with firing.sessions() as session, session.begin():
            jobs.discard_run(session, run, fence=firing.fence)
        return Outcome("idle", detail=detail)
    with firing.sessions() as session, session.begin():
        jobs.finish_run(session, run, JobRunState.done, detail=detail, fence=firing.fence)
    return Outcome("done", detail=detail, run_id=run_id)
