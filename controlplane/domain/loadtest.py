"""The load-test state machine.

``pending -> running -> done | stopped | failed | interrupted``. A load test is not resumed:
a sweep measured on a warmed engine and continued hours later would draw one curve from two
engines. ``stopped`` is an operator's stop (or the sweep's own stop on a step that failed
badly is still ``done``: the curve up to it is the answer); ``interrupted`` is a process that
died, found by a stale lease.
"""

from __future__ import annotations

from enum import StrEnum

from controlplane.domain.lifecycle import Lifecycle


class LoadTestState(StrEnum):
    pending = "pending"
    running = "running"
    done = "done"
    stopped = "stopped"
    failed = "failed"
    interrupted = "interrupted"


LOAD_TEST_LIFECYCLE: Lifecycle[LoadTestState] = Lifecycle(
    "load_test",
    LoadTestState,
    {
        LoadTestState.pending: {LoadTestState.running, LoadTestState.stopped},
        LoadTestState.running: {
            LoadTestState.done,
            LoadTestState.stopped,
            LoadTestState.failed,
            LoadTestState.interrupted,
        },
        LoadTestState.done: set(),
        LoadTestState.stopped: set(),
        LoadTestState.failed: set(),
        LoadTestState.interrupted: set(),
    },
)

LOAD_TEST_ACTION = "loadtest"
