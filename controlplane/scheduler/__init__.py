"""The scheduler (layer 3): every periodic job of the control plane, on one leader.

Job definitions live in the control plane's tables (``jobs``, ``schedules``); APScheduler 3
(``BackgroundScheduler``, in-memory job store) only does the timing. Every firing is named by
(job, scheduled time) and recorded at most once in ``job_runs``; leader jobs are fenced by the
leader lease's token. See docs/scheduler.md.

Other modules add jobs through a :class:`JobSource` registered with
:meth:`SchedulerService.register_source`; a job's ``run`` records its firing with
``controlplane.store.jobs`` or :func:`record_firing`.
"""

from controlplane.scheduler._metrics import SchedulerMetrics
from controlplane.scheduler._record import record_firing
from controlplane.scheduler._service import JobStatus
from controlplane.scheduler._service import SchedulerService
from controlplane.scheduler._service import default_holder
from controlplane.scheduler._system_jobs import KINDS as SYSTEM_KINDS
from controlplane.scheduler._system_jobs import system_defaults
from controlplane.scheduler._triggers import EPOCH
from controlplane.scheduler._triggers import interval_trigger
from controlplane.scheduler._triggers import next_interval_time
from controlplane.scheduler._types import Clock
from controlplane.scheduler._types import Firing
from controlplane.scheduler._types import JobSource
from controlplane.scheduler._types import Outcome
from controlplane.scheduler._types import ScheduledJob
from controlplane.scheduler._views import change_job
from controlplane.scheduler._views import job_list
from controlplane.scheduler._views import job_runs

__all__ = [
    "EPOCH",
    "SYSTEM_KINDS",
    "Clock",
    "Firing",
    "JobSource",
    "JobStatus",
    "Outcome",
    "ScheduledJob",
    "SchedulerMetrics",
    "SchedulerService",
    "change_job",
    "default_holder",
    "interval_trigger",
    "job_list",
    "job_runs",
    "next_interval_time",
    "record_firing",
    "system_defaults",
]
