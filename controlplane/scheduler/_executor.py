"""An APScheduler executor that tells the job which firing it is running.

APScheduler 3 calls a job's function without its scheduled time, and the scheduled time is
what names a firing (``job_runs`` is unique per job and time). ``_do_submit_job`` is
APScheduler's extension point for executors; this one runs ``job.func(*job.args, run_time)``
in a thread pool, with the same misfire check and events as the stock thread pool.
"""

from __future__ import annotations

import concurrent.futures
import logging
import sys
import traceback
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR
from apscheduler.events import EVENT_JOB_EXECUTED
from apscheduler.events import EVENT_JOB_MISSED
from apscheduler.events import JobExecutionEvent
from apscheduler.executors.base import BaseExecutor

log = logging.getLogger("controlplane.scheduler")


class FiringExecutor(BaseExecutor):
    def __init__(
        self, max_workers: int = 8, *, on_missed: Callable[[str, datetime], None] | None = None
    ) -> None:
        """``on_missed(job_id, run_time)`` hears of firings dropped past their misfire grace."""
        super().__init__()
        self._on_missed = on_missed
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers, thread_name_prefix="scheduler"
        )

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        def work() -> list[JobExecutionEvent]:
            events = []
            for run_time in run_times:
                late = datetime.now(UTC) - run_time
                grace = job.misfire_grace_time
                if grace is not None and late > timedelta(seconds=grace):
                    events.append(
                        JobExecutionEvent(EVENT_JOB_MISSED, job.id, job._jobstore_alias, run_time)
                    )
                    if self._on_missed is not None:
                        self._on_missed(job.id, run_time)
                    continue
                try:
                    job.func(*job.args, run_time)
                except BaseException:
                    exc, tb = sys.exc_info()[1:]
                    log.exception("job %s raised", job.id)
                    events.append(
                        JobExecutionEvent(
                            EVENT_JOB_ERROR,
                            job.id,
                            job._jobstore_alias,
                            run_time,
                            exception=exc,
                            traceback="".join(traceback.format_tb(tb)),
                        )
                    )
                else:
                    events.append(
                        JobExecutionEvent(
                            EVENT_JOB_EXECUTED, job.id, job._jobstore_alias, run_time
                        )
                    )
            return events

        def done(future: concurrent.futures.Future[list[JobExecutionEvent]]) -> None:
            exc = future.exception()
            if exc is not None:
                self._run_job_error(job.id, exc, exc.__traceback__)
            else:
                self._run_job_success(job.id, future.result())

        self._pool.submit(work).add_done_callback(done)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait)

    def join(self) -> None:
        """Wait for the firings in progress (after ``shutdown(wait=False)``)."""
        self._pool.shutdown(wait=True)
