"""The tuning-run state machine.

``pending -> running -> (stopping ->) done | stopped | failed | interrupted``. A pending run
may be stopped before it starts. ``stopped`` (an operator asked) and ``interrupted`` (its
process died; a sweep found the lease stale) are finished but resumable: they go back to
``pending`` and the study keeps every trial. ``done`` and ``failed`` never change again.
``stopping -> done`` is legal on purpose: a stop requested while the last trial ends finds
the run already finished.
"""

from __future__ import annotations

from enum import StrEnum

from controlplane.domain.lifecycle import Lifecycle


class TuningRunState(StrEnum):
    pending = "pending"
    running = "running"
    stopping = "stopping"
    done = "done"
    stopped = "stopped"
    failed = "failed"
    interrupted = "interrupted"


_ENDINGS = {TuningRunState.done, TuningRunState.stopped, TuningRunState.failed}

TUNING_RUN_LIFECYCLE: Lifecycle[TuningRunState] = Lifecycle(
    "tuning_run",
    TuningRunState,
    {
        TuningRunState.pending: {TuningRunState.running, TuningRunState.stopped},
        TuningRunState.running: {
            TuningRunState.stopping,
            TuningRunState.interrupted,
            *_ENDINGS,
        },
        TuningRunState.stopping: {TuningRunState.interrupted, *_ENDINGS},
        TuningRunState.done: set(),
        TuningRunState.stopped: {TuningRunState.pending},
        TuningRunState.failed: set(),
        TuningRunState.interrupted: {TuningRunState.pending},
    },
    terminal={
        TuningRunState.done,
        TuningRunState.stopped,
        TuningRunState.failed,
        TuningRunState.interrupted,
    },
)

# Audit actions are ``tuning.<state>`` (the lifecycle's name is the audit target type).
TUNING_ACTION = "tuning"
# Finished for good: no resume.
FINAL: frozenset[TuningRunState] = frozenset(
    s for s in TuningRunState if not TUNING_RUN_LIFECYCLE.transitions[s]
)
