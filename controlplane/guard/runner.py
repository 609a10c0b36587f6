"""Executes one rollout: baseline, apply, bake under watch, then commit or roll back.

Each state change is committed at once, and a heartbeat thread stamps the rollout while this
process watches it, so a crash anywhere leaves a rollout that start-up reconcile can find and
put back on the last known good config. The evidence of every decision (counts, ratios,
thresholds, the bucket bound used, timings) is stored on the rollout.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from collectors import histogram_quantile
from controlplane.domain import SLO
from controlplane.domain import ConflictError
from controlplane.domain import DomainError
from controlplane.domain import EngineConfig
from controlplane.domain import EngineRejectedError
from controlplane.domain import EngineTarget
from controlplane.domain import EngineUnreachableError
from controlplane.domain import RolloutState
from controlplane.domain import ValidationError
from controlplane.domain.canary import CanaryStep
from controlplane.domain.canary import parse_canary_plan
from controlplane.domain.quality import QualitySpec
from controlplane.domain.quality import parse_quality
from controlplane.domain.windows import Snapshot
from controlplane.domain.windows import Window
from controlplane.domain.windows import violations
from controlplane.engines import adapter_for
from controlplane.engines.base import EngineAdapter
from controlplane.guard import quality as quality_probe
from controlplane.guard.canary import CanaryBake
from controlplane.guard.canary import CanaryVerdict
from controlplane.guard.canary import replicated
from controlplane.guard.canary import stand_down
from controlplane.guard.events import EventBus
from controlplane.guard.events import GuardEvent
from controlplane.guard.probe import MetricsProbe
from controlplane.guard.sequential import ConfirmedMonitor
from controlplane.guard.sequential import Decision
from controlplane.guard.sequential import upper_bound
from controlplane.settings import GuardSettings
from controlplane.store import configs
from controlplane.store import engines
from controlplane.store import quality as quality_store
from controlplane.store import rollouts
from controlplane.store import slos as slo_store
from controlplane.store.database import SessionFactory
from controlplane.store.leases import Lease
from controlplane.store.models import RolloutRow

AdapterFactory = Callable[[EngineTarget], EngineAdapter]
# Waits up to the given seconds for the event; True if it was set. The runner's only way to
# pass time, so a test can run a whole bake on a fake clock.
Wait = Callable[[threading.Event, float], bool]
ACTOR = "guard"
# The reason of a rollout the health watch starts: restore, without a baseline or a bake.
HEALTH_REASON = "health"
MAX_DECISIONS = 240
# How long a bake waits past its end for a quality probe still running (a slow engine).
PROBE_WAIT_S = 120.0


@dataclass(frozen=True)
class _Plan:
    rollout_id: int
    engine_id: int
    target: EngineTarget
    changes: dict[str, Any]
    from_config: dict[str, Any]
    lkg_config_id: int | None
    lkg_config: dict[str, Any]
    to_config_id: int | None
    slos: tuple[SLO, ...]
    bake_s: float
    reason: str = ""
    quality: QualitySpec | None = None
    reference: quality_store.QualityReference | None = None
    canary: tuple[CanaryStep, ...] = ()


@dataclass
class _Outcome:
    verdict: str  # pass | breach | unreachable | inconclusive | operator
    summary: str
    at_s: float
    detail: dict[str, Any] = field(default_factory=dict)


class RolloutAborted(Exception):
    """Someone else (reconcile, an operator) moved the rollout; this runner stands down."""


class RolloutRunner:
    def __init__(
        self,
        *,
        session_factory: SessionFactory,
        policy: GuardSettings,
        events: EventBus | None = None,
        adapter_factory: AdapterFactory = adapter_for,
        clock: Callable[[], float] = time.monotonic,
        wait: Wait | None = None,
    ) -> None:
        """``clock`` and ``wait`` go together: a fake clock's ``wait`` advances it."""
        self._sessions = session_factory
        self._policy = policy
        self._events = events or EventBus()
        self._adapter_factory = adapter_factory
        self._clock = clock
        self._wait: Wait = wait or _wait

    # -- public ---------------------------------------------------------------------------

    def execute(self, rollout_id: int, *, stop: threading.Event | None = None) -> RolloutState:
        """Run a pending rollout to a terminal state and return that state."""
        stop = stop or threading.Event()
        plan = self._load(rollout_id)
        adapter = self._adapter_factory(plan.target)
        probe = MetricsProbe(adapter, timeout_s=max(0.5, self._policy.interval_s * 4))
        heartbeat = Lease(
            self._sessions,
            lambda session: rollouts.stamp_heartbeat(session, rollout_id),
            every_s=self._policy.heartbeat_s,
            name=f"heartbeat-{rollout_id}",
            on_stop=stop.set,
            stamp_at_start=True,
        )
        heartbeat.start()
        try:
            return self._run(plan, adapter, probe, stop)
        except RolloutAborted:
            return self._state(rollout_id)
        finally:
            heartbeat.stop()
            probe.close()
            adapter.close()

    # -- phases ---------------------------------------------------------------------------

    def _run(
        self, plan: _Plan, adapter: EngineAdapter, probe: MetricsProbe, stop: threading.Event
    ) -> RolloutState:
        if plan.reason == HEALTH_REASON:
            return self._restore(plan, adapter)
        if plan.canary:
            return self._run_canary(plan, adapter, stop)
        baseline = self._baseline(plan, probe, stop)
        self._move(plan, RolloutState.applying, evidence={"baseline": baseline["evidence"]})
        started = self._clock()
        try:
            served = adapter.apply(plan.changes)
        except (ValidationError, EngineRejectedError) as exc:
            return self._refused(plan, adapter, exc)
        except EngineUnreachableError as exc:
            outcome = _Outcome("unreachable", f"apply failed: {exc}", 0.0)
            return self._roll_back(plan, adapter, outcome, fail_anyway=True)
        apply_s = self._clock() - started
        self._move(
            plan,
            RolloutState.baking,
            evidence={"served_config": served, "apply_s": round(apply_s, 3)},
        )
        checker = self._start_quality_probe(plan, adapter, served)
        try:
            outcome, decisions = self._bake(plan, probe, stop, baseline["p0"], checker)
        finally:
            if checker is not None:
                checker.stop()
        evidence = {"decisions": decisions, "verdict": _verdict_json(outcome)}
        if outcome.verdict == "pass" or (
            outcome.verdict == "inconclusive" and self._policy.on_no_data == "commit"
        ):
            return self._commit(plan, outcome, evidence)
        return self._roll_back(plan, adapter, outcome, evidence=evidence)

    def _start_quality_probe(
        self, plan: _Plan, adapter: EngineAdapter, served: EngineConfig
    ) -> quality_probe.BackgroundProbe | None:
        """The quality probe runs beside the bake when the change may alter answers and the
        engine has a quality spec (stored, or the proposer's) and reference answers."""
        if plan.quality is None or plan.reference is None:
            return None
        if not quality_probe.touches_quality(plan.changes, adapter.quality_knobs):
            return None
        return quality_probe.BackgroundProbe(
            self._adapter_factory(plan.target),
            plan.reference.answers,
            top_k=plan.reference.top_k,
            config=served,
        ).start()

    def _baseline(self, plan: _Plan, probe: MetricsProbe, stop: threading.Event) -> dict[str, Any]:
        """Before the change: how often does the current config violate each SLO?"""
        first = probe.snapshot()
        if self._policy.baseline_s > 0:
            self._wait(stop, self._policy.baseline_s)
        last = probe.snapshot()
        p0: dict[str, float] = {}
        per_slo: dict[str, Any] = {}
        for slo in plan.slos:
            allowed = slo.allowed_violation_rate
            if first is None or last is None:
                p0[slo.name] = _clamp(allowed)
                per_slo[slo.name] = {"available": False, "p0": p0[slo.name]}
                continue
            window = last.since(first)
            w = violations(window, slo)
            if w.n >= self._policy.min_requests:
                # New against baseline: a config that was already worse than its SLO is only
                # rolled back for getting worse still, not for the old config's sins.
                p0[slo.name] = _clamp(max(allowed, upper_bound(w.n, w.k)))
            else:
                p0[slo.name] = _clamp(allowed)
            per_slo[slo.name] = {
                **_window_json(w),
                "p0": round(p0[slo.name], 6),
                "quantile_s": _quantile(window, slo),
            }
        evidence = {"duration_s": self._policy.baseline_s, "slos": per_slo}
        return {"p0": p0, "evidence": evidence}

    def _bake(
        self,
        plan: _Plan,
        probe: MetricsProbe,
        stop: threading.Event,
        p0: dict[str, float],
        checker: quality_probe.BackgroundProbe | None = None,
    ) -> tuple[_Outcome, list[dict[str, Any]]]:
        policy = self._policy
        monitors = {
            slo.name: ConfirmedMonitor(
                p0=p0[slo.name],
                alpha=policy.alpha / len(plan.slos),
                restart_s=policy.restart_s,
                confirm_s=policy.confirm_s,
                min_requests=policy.min_requests,
                recur_s=policy.recur_s,
            )
            for slo in plan.slos
        }
        decisions: list[dict[str, Any]] = []
        start = self._clock()
        last_scrape = start
        reference: Snapshot | None = None
        last_logged = -math.inf
        while True:
            if self._wait(stop, policy.interval_s):
                at = self._clock() - start
                requested = self._rollback_requested(plan.rollout_id)
                return _Outcome("operator", f"rollback requested by {requested}", at), decisions
            now = self._clock()
            elapsed = now - start
            snap = probe.snapshot()
            if snap is None:
                if now - last_scrape >= policy.unreachable_s:
                    summary = f"engine unreachable for {now - last_scrape:.1f} s"
                    return _Outcome("unreachable", summary, elapsed), decisions
                continue
            last_scrape = now
            quality = self._quality_verdict(plan, checker, elapsed)
            if quality is not None and quality.verdict == "quality":
                return quality, decisions
            if reference is None or elapsed < policy.warmup_s:
                reference = snap
                continue
            window = snap.since(reference)
            enough = True
            for slo in plan.slos:
                w = violations(window, slo)
                decision = monitors[slo.name].update(n=w.n, k=w.k, now=elapsed)
                judged = w.n >= policy.min_requests
                enough = enough and judged
                state = decision.state if decision.state != "hold" or judged else "no_data"
                if state not in ("hold", "no_data") or elapsed - last_logged >= 1.0:
                    decisions.append(
                        {"t_s": round(elapsed, 3), "slo": slo.name, **_window_json(w),
                         **_decision_json(decision), "verdict": state}
                    )  # fmt: skip
                    del decisions[:-MAX_DECISIONS]
                if state == "breach":
                    first, confirm = decision.verdict, decision.confirm
                    summary = (
                        f"{slo.spec()} breached: {w.k} of {w.n} requests violated "
                        f"(allowed rate {p0[slo.name]:.4f}); log LR {first.log_ratio:.2f} "
                        f">= {first.threshold:.2f}"
                    )
                    if decision.recurred:
                        summary += ", a second suspicion within the recurrence window"
                    elif confirm is not None:
                        summary += (
                            f", confirmed by {confirm.k} of {confirm.n} later requests "
                            f"(log LR {confirm.log_ratio:.2f} >= {confirm.threshold:.2f})"
                        )
                    detail: dict[str, Any] = {
                        "slo": slo.spec(),
                        "quantile_s": _quantile(window, slo),
                        "dismissed": monitors[slo.name].dismissed,
                    }
                    return _Outcome("breach", summary, elapsed, detail), decisions
            if elapsed - last_logged >= 1.0:
                last_logged = elapsed
            # A suspicion still awaiting confirmation holds the bake open (at most confirm_s).
            settled = not any(m.suspect for m in monitors.values())
            settled = settled and (checker is None or checker.done)
            if elapsed >= plan.bake_s and enough and settled:
                quantiles = {s.name: _quantile(window, s) for s in plan.slos}
                dismissed = sum(m.dismissed for m in monitors.values())
                summary = f"baked {elapsed:.1f} s without a breach"
                if dismissed:
                    summary += f" ({dismissed} unconfirmed suspicion(s) dismissed as transient)"
                detail = {"quantile_s": quantiles, "dismissed": dismissed}
                if quality is not None:
                    summary += f"; {quality.summary}"
                    detail["quality"] = quality.detail["quality"]
                return _Outcome("pass", summary, elapsed, detail), decisions
            probing = checker is not None and not checker.done
            if probing and elapsed < plan.bake_s + policy.no_data_timeout_s + PROBE_WAIT_S:
                continue  # the probe's verdict does not need traffic: wait for it
            if elapsed >= plan.bake_s + policy.no_data_timeout_s:
                summary = (
                    f"inconclusive: fewer than {policy.min_requests} requests per SLO "
                    f"within {elapsed:.0f} s"
                )
                return _Outcome("inconclusive", summary, elapsed), decisions

    def _quality_verdict(
        self, plan: _Plan, checker: quality_probe.BackgroundProbe | None, elapsed: float
    ) -> _Outcome | None:
        """The probe's outcome once it has finished: ``quality`` (roll back) below the
        spec or when the probe could not run, ``pass`` otherwise; ``None`` while it runs."""
        if checker is None or not checker.done or plan.quality is None:
            return None
        spec = plan.quality
        if checker.result is None:
            summary = f"{spec.spec()}: the quality probe could not run: {checker.error}"
            detail = {"quality": {"spec": spec.spec(), "passed": False, "error": checker.error}}
            return _Outcome("quality", summary, elapsed, detail)
        evidence = quality_probe.verdict_json(spec, checker.result)
        if not spec.passes(checker.result):
            summary = quality_probe.summary(spec, checker.result)
            return _Outcome("quality", summary, elapsed, {"quality": evidence})
        value = spec.value_of(checker.result)
        summary = f"{spec.spec()} held ({spec.name} {value:.4f})"
        return _Outcome("pass", summary, elapsed, {"quality": evidence})

    def _restore(self, plan: _Plan, adapter: EngineAdapter) -> RolloutState:
        """A health rollback: the engine fails its inference checks, so there is no baseline
        to measure and nothing to bake against. The target is the config the engine served
        well before the change (its last known good until that change committed); it is
        applied with the retries of a rollback, since a failing engine may answer late, and
        committed once the engine serves it and answers its health check. If it cannot be
        restored within ``rollback_timeout_s`` the rollout fails and says so."""
        self._move(plan, RolloutState.applying, evidence={"baseline": {"skipped": "health"}})
        restore = restore_last_known_good(
            adapter,
            plan.changes,
            timeout_s=self._policy.rollback_timeout_s,
            clock=self._clock,
            sleep=lambda seconds: self._wait(threading.Event(), seconds),
        )
        if not restore["restored"]:
            error = f"restoring the previous config failed: {restore['error']}"
            evidence = {"restore": restore, "verdict": {"outcome": "unrestored", "summary": error}}
            self._move(plan, RolloutState.failed, evidence=evidence, error=error)
            self._emit(plan, "rollout.failed", error, evidence)
            return RolloutState.failed
        self._move(plan, RolloutState.baking, evidence={"served_config": restore["served_config"]})
        summary = f"previous config restored in {restore['duration_s']:.1f} s"
        outcome = _Outcome("pass", summary, float(restore["duration_s"]))
        return self._commit(plan, outcome, {"restore": restore, "verdict": _verdict_json(outcome)})

    def _run_canary(
        self, plan: _Plan, adapter: EngineAdapter, stop: threading.Event
    ) -> RolloutState:
        """The new config on one replica, its share stepped up on the plan (canary.py)."""
        engine = replicated(adapter)
        if engine is None:
            error = "a canary needs an engine with two or more replicas behind its proxy"
            refused: dict[str, Any] = {"verdict": {"outcome": "refused", "summary": error}}
            self._move(plan, RolloutState.failed, evidence=refused, error=error)
            self._emit(plan, "rollout.failed", error, refused)
            return RolloutState.failed
        canary = engine.replica_count - 1
        steps_spec = [s.spec() for s in plan.canary]

        def canary_evidence(steps: list[dict[str, Any]]) -> dict[str, Any]:
            return {"canary": {"replica": canary, "plan": steps_spec, "steps": steps}}

        self._move(plan, RolloutState.applying, evidence=canary_evidence([]))
        started = self._clock()
        try:
            engine.set_traffic_share(canary, 0.0)
            served = engine.apply_replica(canary, plan.changes)
        except DomainError as exc:
            restore = stand_down(engine, canary, plan.from_config, clock=self._clock)
            error = f"the canary replica did not take the config: {exc}"
            failed: dict[str, Any] = {
                "verdict": {"outcome": "refused", "summary": error},
                "rollback": restore,
            }
            self._move(plan, RolloutState.failed, evidence=failed, error=error)
            self._emit(plan, "rollout.failed", error, failed)
            return RolloutState.failed
        self._move(
            plan,
            RolloutState.baking,
            evidence={"served_config": served, "apply_s": round(self._clock() - started, 3)},
        )

        def record(steps: list[dict[str, Any]]) -> None:
            with self._sessions() as session, session.begin():
                try:
                    rollouts.add_evidence(
                        session, plan.rollout_id, canary_evidence(steps), state=RolloutState.baking
                    )
                except ConflictError as exc:
                    raise RolloutAborted(str(exc)) from exc

        bake = CanaryBake(
            engine,
            adapter,
            slos=plan.slos,
            policy=self._policy,
            clock=self._clock,
            wait=self._wait,
            record=record,
        )
        try:
            verdict = bake.run(plan.canary, stop)
        finally:
            bake.close()
        at_s = self._clock() - started
        evidence: dict[str, Any] = canary_evidence(verdict.steps)
        if verdict.outcome == "operator":
            summary = f"rollback requested by {self._rollback_requested(plan.rollout_id)}"
            verdict = CanaryVerdict("operator", summary, verdict.steps)
        if verdict.outcome == "pass":
            try:
                served = adapter.apply(plan.changes)
                engine.set_traffic_share(canary, None)
            except DomainError as exc:
                outcome = _Outcome(
                    "unreachable", f"promoting to every replica failed: {exc}", at_s
                )
                restore = stand_down(engine, canary, plan.from_config, clock=self._clock)
                evidence.update(verdict=_verdict_json(outcome), rollback=restore)
                self._move(plan, RolloutState.failed, evidence=evidence, error=outcome.summary)
                self._emit(plan, "rollout.failed", outcome.summary, evidence)
                return RolloutState.failed
            outcome = _Outcome("pass", verdict.summary, at_s)
            evidence.update(served_config=served, verdict=_verdict_json(outcome))
            return self._commit(plan, outcome, evidence)
        restore = stand_down(
            engine, canary, plan.from_config, clock=self._clock, breach_at=verdict.breach_at
        )
        outcome = _Outcome(verdict.outcome, verdict.summary, at_s)
        evidence.update(verdict=_verdict_json(outcome), rollback=restore)
        if restore.get("restored"):
            self._move(plan, RolloutState.rolled_back, evidence=evidence)
            self._emit(plan, "rollout.rolled_back", outcome.summary, evidence)
            return RolloutState.rolled_back
        error = f"{outcome.summary}; {restore.get('error', 'restore failed')}"
        self._move(plan, RolloutState.failed, evidence=evidence, error=error)
        self._emit(plan, "rollout.failed", error, evidence)
        return RolloutState.failed

    # -- endings --------------------------------------------------------------------------

    def _commit(self, plan: _Plan, outcome: _Outcome, evidence: dict[str, Any]) -> RolloutState:
        with self._sessions() as session, session.begin():
            if plan.to_config_id is not None:
                configs.mark_last_known_good(
                    session, configs.get_config(session, plan.to_config_id)
                )
            self._move_in(session, plan, RolloutState.committed, evidence=evidence)
        self._emit(plan, "rollout.committed", outcome.summary, evidence)
        return RolloutState.committed

    def _refused(self, plan: _Plan, adapter: EngineAdapter, exc: DomainError) -> RolloutState:
        """The engine refused the config: make sure it still serves what it did, then fail."""
        try:
            untouched = _matches(adapter.current_config(), plan.from_config)
        except EngineUnreachableError:
            untouched = False
        if not untouched:
            outcome = _Outcome("refused", f"engine refused the change: {exc}", 0.0)
            return self._roll_back(plan, adapter, outcome, fail_anyway=True)
        evidence = {"verdict": {"outcome": "refused", "summary": str(exc)}}
        self._move(plan, RolloutState.failed, evidence=evidence, error=str(exc))
        self._emit(plan, "rollout.failed", f"engine refused the change: {exc}", evidence)
        return RolloutState.failed

    def _roll_back(
        self,
        plan: _Plan,
        adapter: EngineAdapter,
        outcome: _Outcome,
        *,
        evidence: dict[str, Any] | None = None,
        fail_anyway: bool = False,
    ) -> RolloutState:
        restore = restore_last_known_good(
            adapter,
            plan.lkg_config,
            timeout_s=self._policy.rollback_timeout_s,
            clock=self._clock,
            sleep=lambda seconds: self._wait(threading.Event(), seconds),
        )
        evidence = {
            **(evidence or {}),
            "verdict": _verdict_json(outcome),
            "rollback": restore,
        }
        if restore["restored"] and not fail_anyway:
            self._move(plan, RolloutState.rolled_back, evidence=evidence)
            self._emit(plan, "rollout.rolled_back", outcome.summary, evidence)
            return RolloutState.rolled_back
        error = outcome.summary
        if not restore["restored"]:
            error += f"; restoring the last known good config failed: {restore['error']}"
        self._move(plan, RolloutState.failed, evidence=evidence, error=error)
        self._emit(plan, "rollout.failed", error, evidence)
        return RolloutState.failed

    # -- plumbing -------------------------------------------------------------------------

    def _load(self, rollout_id: int) -> _Plan:
        with self._sessions() as session, session.begin():
            row = rollouts.get_rollout(session, rollout_id)
            if row.state != RolloutState.pending.value:
                raise ConflictError(f"rollout {rollout_id} is {row.state}, not pending")
            if row.evidence.get("awaiting_approval"):
                raise ConflictError(f"rollout {rollout_id} is waiting for an operator's approval")
            engine = engines.get_engine(session, row.engine_id)
            lkg = configs.last_known_good(session, engine.id)
            evidence = row.evidence
            slos = tuple(slo_store.engine_slos(session, engine.id))
            proposed = evidence.get("quality")
            quality = (
                parse_quality(str(proposed))
                if proposed
                else quality_store.engine_quality(session, engine.id)
            )
            reference = quality_store.get_reference(session, engine.id) if quality else None
            return _Plan(
                rollout_id=row.id,
                engine_id=engine.id,
                target=engines.engine_target(engine),
                changes=dict(evidence["changes"]),
                from_config=dict(evidence["from_config"]),
                lkg_config_id=lkg.id if lkg else None,
                lkg_config=dict(lkg.config if lkg else evidence["from_config"]),
                to_config_id=row.to_config_id,
                slos=slos,
                bake_s=float(evidence.get("bake_s") or self._policy.bake_s),
                reason=row.reason,
                quality=quality,
                reference=reference,
                canary=parse_canary_plan(evidence["canary_plan"])
                if evidence.get("canary_plan")
                else (),
            )

    def _move(
        self,
        plan: _Plan,
        state: RolloutState,
        *,
        evidence: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        with self._sessions() as session, session.begin():
            self._move_in(session, plan, state, evidence=evidence, error=error)

    def _move_in(
        self,
        session: Any,
        plan: _Plan,
        state: RolloutState,
        *,
        evidence: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> RolloutRow:
        row = rollouts.get_rollout(session, plan.rollout_id)
        try:
            return rollouts.move(session, row, state, actor=ACTOR, evidence=evidence, error=error)
        except ConflictError as exc:
            raise RolloutAborted(str(exc)) from exc

    def _state(self, rollout_id: int) -> RolloutState:
        with self._sessions() as session, session.begin():
            return RolloutState(rollouts.get_rollout(session, rollout_id).state)

    def _rollback_requested(self, rollout_id: int) -> str:
        with self._sessions() as session, session.begin():
            row = rollouts.get_rollout(session, rollout_id)
            return str(row.evidence.get("rollback_requested_by") or "shutdown")

    def _emit(self, plan: _Plan, kind: str, summary: str, detail: dict[str, Any]) -> None:
        self._events.emit(GuardEvent(kind, plan.target.name, plan.rollout_id, summary, detail))


def restore_last_known_good(
    adapter: EngineAdapter,
    lkg: EngineConfig | dict[str, Any],
    *,
    timeout_s: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> dict[str, Any]:
    """Apply ``lkg`` until the engine serves it and answers its health check, or time out.

    Retries cover an engine that is paused or restarting: it comes back and is then put
    back on LKG, rather than the first refused connection ending the attempt.
    """
    started = clock()
    attempts = 0
    error = ""
    while True:
        attempts += 1
        try:
            known = {k: v for k, v in lkg.items() if k in adapter.search_space()}
            served = adapter.apply(known)
            health = adapter.health()
            if health.ok and _matches(served, known):
                return {
                    "restored": True,
                    "attempts": attempts,
                    "duration_s": round(clock() - started, 3),
                    "served_config": served,
                }
            error = f"after apply: health {health.detail}, serving {served}"
        except DomainError as exc:
            error = str(exc)
        if clock() - started >= timeout_s:
            return {
                "restored": False,
                "attempts": attempts,
                "duration_s": round(clock() - started, 3),
                "error": error,
            }
        sleep(0.2)


def _wait(stop: threading.Event, seconds: float) -> bool:
    return stop.wait(seconds)


def _matches(served: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(served.get(k) == v for k, v in wanted.items())


def _clamp(p: float) -> float:
    return min(max(p, 1e-6), 0.9)


def _window_json(w: Window) -> dict[str, Any]:
    return {
        "n": w.n,
        "k": w.k,
        "rate": None if w.rate is None else round(w.rate, 6),
        "bound_s": w.bound,
    }


def _decision_json(decision: Decision) -> dict[str, Any]:
    verdict, confirm = decision.verdict, decision.confirm
    out: dict[str, Any] = {
        "log_ratio": round(verdict.log_ratio, 3),
        "threshold": round(verdict.threshold, 3),
        "test": verdict.test_index,
    }
    if decision.recurred:
        out["recurred"] = True
    if confirm is not None:
        out["confirm"] = {
            "n": confirm.n,
            "k": confirm.k,
            "log_ratio": round(confirm.log_ratio, 3),
            "threshold": round(confirm.threshold, 3),
        }
    return out


def _quantile(window: Snapshot, slo: SLO) -> float | None:
    if slo.quantile is None:
        return None
    per_le = window.buckets.get(slo.series.value, {})
    q = histogram_quantile(slo.quantile, sorted(per_le.items()))
    return None if math.isnan(q) else round(q, 6)


def _verdict_json(outcome: _Outcome) -> dict[str, Any]:
    return {
        "outcome": outcome.verdict,
        "summary": outcome.summary,
        "at_s": round(outcome.at_s, 3),
        **outcome.detail,
    }
