"""One experiment at layer 1: inject, hold for the duration, collect the proof, clean up.

The caller (CLI, API, tests) records the experiment in the store and judges the guard's
reaction from the rollouts; this module knows nothing of either, so it stays below them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from controlplane.chaos._inject import Injection
from controlplane.chaos._inject import Injector
from controlplane.chaos._spec import Fault
from controlplane.chaos._spec import Target
from controlplane.chaos._watchdog import cleanup
from controlplane.settings import ChaosSettings


@dataclass
class Outcome:
    """What ran and the evidence that it did."""

    mechanisms: dict[str, str]
    counters_before: dict[str, Any]
    counters_after: dict[str, Any]
    inject_s: float
    cleanup_s: float
    held_s: float
    aborted: bool
    cleanup_log: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "mechanisms": self.mechanisms,
            "counters_before": self.counters_before,
            "counters_after": self.counters_after,
            "inject_s": round(self.inject_s, 4),
            "cleanup_s": round(self.cleanup_s, 4),
            "held_s": round(self.held_s, 3),
            "aborted": self.aborted,
            "cleanup_log": self.cleanup_log,
        }


def run_fault(
    *,
    key: str,
    target: Target,
    fault: Fault,
    duration_s: float,
    settings: ChaosSettings,
    state_dir: Path,
    stop: threading.Event | None = None,
    on_injected: Any = None,
) -> Outcome:
    """Inject ``fault`` for ``duration_s`` and always remove it (the watchdog backs this up).

    ``on_injected(injection)`` runs once the fault is in place (e.g. to start load).
    """
    inj = Injector(settings, state_dir).inject(key, target, fault, ttl_s=duration_s)
    if on_injected is not None:
        try:
            on_injected(inj)
        except BaseException:
            inj.remove()
            raise
    return hold(inj, duration_s, stop=stop)


def hold(inj: Injection, duration_s: float, *, stop: threading.Event | None = None) -> Outcome:
    """Keep the fault for ``duration_s``, read the counters before and after, remove it.

    ``stop`` ends the hold early; so does an abort from another process (which removes the
    state file). Removal runs whatever happens in between.
    """
    began = time.monotonic()
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    try:
        before = inj.counters()
        deadline = began + duration_s
        event = stop or threading.Event()
        while inj.active and not event.wait(min(0.1, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                break
        aborted = not inj.active or event.is_set()
        after = inj.counters()
    finally:
        held = time.monotonic() - began
        t0 = time.monotonic()
        log = inj.remove()
        took = time.monotonic() - t0
    return Outcome(
        mechanisms=inj.mechanisms,
        counters_before=before,
        counters_after=after,
        inject_s=inj.inject_s,
        cleanup_s=took,
        held_s=held,
        aborted=aborted,
        cleanup_log=log,
    )


def abort(state_dir: Path, key: str) -> list[str]:
    """Remove a running fault from any process: the lock makes it safe against its owner."""
    return cleanup(state_dir / f"{key}.json")
