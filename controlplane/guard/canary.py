"""A canary rollout: the new config on one replica, its traffic share stepped up on a plan,
judged against the rest of the fleet at the same time.

The last replica is the canary. It gets the new config while its share is 0, then each step
of the plan sets its share (through the proxy's weights) and holds it. Every look compares
the canary's violations with the other replicas' over the same interval (since the canary's
first step): the allowed rate ``p0`` is the larger of the SLO's allowance and the fleet's
own rate (its upper confidence bound), and the canary breaches when the mixture SPRT
rejects "canary violates at most ``p0``". A stall of the machine or a burst of heavy
prompts raises the fleet's rate with the canary's, so it is not mistaken for the new
config's fault; the past is never the baseline. (``p0`` moves with the fleet, so the test
is not anytime-valid in the strict sense of a fixed ``p0``; the fleet's upper bound keeps
it conservative.)

A breach, an unreachable canary or an operator's rollback sends the canary's share to 0
at once (in-flight requests finish), then restores its config and evens the weights. After
the last step the config goes to the other replicas too (blue/green each) and the weights
even out. Every step, with its windows and the test's numbers, is written to the rollout's
evidence as it ends.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controlplane.domain import SLO
from controlplane.domain import DomainError
from controlplane.domain import EngineConfig
from controlplane.domain.canary import CanaryStep
from controlplane.domain.windows import Snapshot
from controlplane.domain.windows import Window
from controlplane.domain.windows import violations
from controlplane.engines.base import EngineAdapter
from controlplane.engines.base import ReplicatedEngine
from controlplane.guard.probe import MetricsProbe
from controlplane.guard.sequential import MixtureSPRT
from controlplane.guard.sequential import upper_bound
from controlplane.settings import GuardSettings


@dataclass(frozen=True)
class CanaryVerdict:
    outcome: str  # pass | breach | unreachable | operator | inconclusive
    summary: str
    steps: list[dict[str, Any]]
    breach_at: float | None = None
    """Clock reading when the breach was decided (for the time to weight 0)."""


def replicated(adapter: EngineAdapter) -> ReplicatedEngine | None:
    """The adapter as a replicated engine with at least two replicas, or ``None``."""
    if isinstance(adapter, ReplicatedEngine) and adapter.replica_count >= 2:
        return adapter
    return None


@dataclass(frozen=True)
class _Judgement:
    breach: bool
    enough: bool
    detail: dict[str, Any]
    summary: str


def judge(
    canary: Window, fleet: Window, slo: SLO, *, alpha: float, min_requests: int
) -> _Judgement:
    """One look: does the canary violate ``slo`` more often than the fleet beside it?"""
    allowed = slo.allowed_violation_rate
    p0 = allowed
    if fleet.n >= min_requests:
        p0 = max(allowed, upper_bound(fleet.n, fleet.k))
    p0 = min(max(p0, 1e-6), 0.9)
    test = MixtureSPRT(p0=p0, alpha=alpha)
    log_ratio = test.log_ratio(canary.n, canary.k)
    breach = canary.n > 0 and log_ratio >= test.threshold
    detail = {
        "canary": _window(canary),
        "fleet": _window(fleet),
        "p0": round(p0, 6),
        "log_ratio": round(log_ratio, 3),
        "threshold": round(test.threshold, 3),
    }
    summary = (
        f"{slo.spec()}: canary {canary.k} of {canary.n} violated, fleet {fleet.k} of "
        f"{fleet.n} (allowed rate {p0:.4f}); log LR {log_ratio:.2f} vs {test.threshold:.2f}"
    )
    return _Judgement(breach, canary.n >= min_requests, detail, summary)


class CanaryBake:
    """Steps a canary through its plan; returns the verdict without touching the store
    (the runner records steps through ``record`` and moves the rollout)."""

    def __init__(
        self,
        engine: ReplicatedEngine,
        adapter: EngineAdapter,
        *,
        slos: tuple[SLO, ...],
        policy: GuardSettings,
        clock: Callable[[], float],
        wait: Callable[[threading.Event, float], bool],
        record: Callable[[list[dict[str, Any]]], None],
    ) -> None:
        self.engine = engine
        self.canary = engine.replica_count - 1
        self._slos = slos
        self._policy = policy
        self._clock = clock
        self._wait = wait
        self._record = record
        timeout = max(0.5, policy.interval_s * 4)
        self._probes = [
            MetricsProbe(adapter, timeout_s=timeout, url=engine.replica_metrics_url(i))
            for i in range(engine.replica_count)
        ]

    def close(self) -> None:
        for probe in self._probes:
            probe.close()

    def run(self, plan: tuple[CanaryStep, ...], stop: threading.Event) -> CanaryVerdict:
        steps: list[dict[str, Any]] = []
        refs: list[Snapshot | None] = [p.snapshot() for p in self._probes]
        start = self._clock()
        last_seen = start
        alpha = self._policy.alpha / max(1, len(self._slos))
        for index, step in enumerate(plan):
            achieved = self.engine.set_traffic_share(self.canary, step.share)
            entry: dict[str, Any] = {
                "step": index,
                "share": step.share,
                "achieved_share": round(achieved, 6),
                "hold_s": step.hold_s,
                "started_s": round(self._clock() - start, 3),
            }
            step_start = self._clock()
            looks: dict[str, Any] = {}
            enough = False
            while True:
                if self._wait(stop, self._policy.interval_s):
                    return self._end(steps, entry, looks, start, "operator", "rollback requested")
                now = self._clock()
                snaps = [p.snapshot() for p in self._probes]
                for i, snap in enumerate(snaps):
                    if refs[i] is None and snap is not None:
                        refs[i] = snap  # a replica first seen late starts its window here
                canary_snap, canary_ref = snaps[self.canary], refs[self.canary]
                if canary_snap is None or canary_ref is None:
                    if now - last_seen >= self._policy.unreachable_s:
                        summary = f"canary unreachable for {now - last_seen:.1f} s"
                        return self._end(steps, entry, looks, start, "unreachable", summary, now)
                    continue
                last_seen = now
                enough = True
                for slo in self._slos:
                    canary_w = violations(canary_snap.since(canary_ref), slo)
                    fleet_w = _fleet(snaps, refs, self.canary, slo)
                    j = judge(
                        canary_w,
                        fleet_w,
                        slo,
                        alpha=alpha,
                        min_requests=self._policy.min_requests,
                    )
                    looks[slo.name] = {"t_s": round(now - start, 3), **j.detail}
                    enough = enough and j.enough
                    if j.breach:
                        return self._end(steps, entry, looks, start, "breach", j.summary, now)
                # A step ends once held and judged on enough requests; a canary too quiet
                # to judge gets ``no_data_timeout_s`` more before the step is inconclusive.
                held = now - step_start
                if held >= step.hold_s and (
                    enough or held >= step.hold_s + self._policy.no_data_timeout_s
                ):
                    break
            if not enough and self._policy.on_no_data != "commit":
                summary = (
                    f"inconclusive: the canary served fewer than {self._policy.min_requests} "
                    f"requests per SLO by the end of step {index} ({step.spec()})"
                )
                return self._end(steps, entry, looks, start, "inconclusive", summary)
            entry.update(ended_s=round(self._clock() - start, 3), verdict="pass", slos=looks)
            steps.append(entry)
            self._record(steps)
        summary = f"canary passed {len(plan)} step(s) in {self._clock() - start:.1f} s"
        return CanaryVerdict("pass", summary, steps)

    def _end(
        self,
        steps: list[dict[str, Any]],
        entry: dict[str, Any],
        looks: dict[str, Any],
        start: float,
        outcome: str,
        summary: str,
        breach_at: float | None = None,
    ) -> CanaryVerdict:
        entry.update(
            ended_s=round(self._clock() - start, 3), verdict=outcome, summary=summary, slos=looks
        )
        steps.append(entry)
        return CanaryVerdict(outcome, summary, steps, breach_at=breach_at)


def stand_down(
    engine: ReplicatedEngine,
    canary: int,
    from_config: EngineConfig,
    *,
    clock: Callable[[], float] = time.monotonic,
    breach_at: float | None = None,
) -> dict[str, Any]:
    """Share 0 first (no new request reaches the bad config), then the old config back on
    the canary replica, then even weights. Never raises: what failed is in the result."""
    result: dict[str, Any] = {}
    try:
        engine.set_traffic_share(canary, 0.0)
        if breach_at is not None:
            result["breach_to_weight_0_s"] = round(clock() - breach_at, 3)
    except DomainError as exc:
        result["error"] = f"setting the canary's share to 0 failed: {exc}"
        return result
    try:
        current = engine.replica_config(canary)
        known = {k: v for k, v in from_config.items() if k in current}
        started = clock()
        served = engine.apply_replica(canary, known)
        engine.set_traffic_share(canary, None)
        result.update(restored=True, served_config=served, duration_s=round(clock() - started, 3))
    except DomainError as exc:
        # The canary keeps share 0: the fleet serves everything on the old config.
        result.update(restored=False, error=f"restoring the canary's config failed: {exc}")
    return result


def _fleet(
    snaps: list[Snapshot | None], refs: list[Snapshot | None], canary: int, slo: SLO
) -> Window:
    n = k = 0
    for i, (snap, ref) in enumerate(zip(snaps, refs, strict=True)):
        if i == canary or snap is None or ref is None:
            continue
        w = violations(snap.since(ref), slo)
        n, k = n + w.n, k + w.k
    return Window(n=n, k=k, bound=None)


def _window(w: Window) -> dict[str, Any]:
    rate = w.rate
    return {
        "n": w.n,
        "k": w.k,
        "rate": None if rate is None or math.isnan(rate) else round(rate, 6),
    }
