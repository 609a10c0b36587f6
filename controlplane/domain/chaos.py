"""The chaos-experiment state machine: ``running -> completed | aborted | failed``.

An abort (operator, API, CLI) ends the experiment at once; the process holding the fault
still records its result afterwards, and the experiment keeps ``aborted`` (the store writes
the result without a state change then).
"""

from __future__ import annotations

from enum import StrEnum

from controlplane.domain.lifecycle import Lifecycle


class ChaosState(StrEnum):
    running = "running"
    completed = "completed"
    aborted = "aborted"
    failed = "failed"


CHAOS_LIFECYCLE: Lifecycle[ChaosState] = Lifecycle(
    "chaos_experiment",
    ChaosState,
    {
        ChaosState.running: {ChaosState.completed, ChaosState.aborted, ChaosState.failed},
        ChaosState.completed: set(),
        ChaosState.aborted: set(),
        ChaosState.failed: set(),
    },
)

# Audit actions are ``chaos.<state>`` (the lifecycle's name is the audit target type).
CHAOS_ACTION = "chaos"
