"""One tuning run, start to finish: baseline, trials, re-measurement, guarded apply, report.

A trial is a guarded rollout. The tuner proposes the suggested config like any other
change; the guard measures a baseline, applies, bakes under watch and commits or rolls
back. A rollback for an SLO breach makes the trial *infeasible* (told with positive
constraint values, so the sampler learns where the cliff is); any other failure (the
engine died, refused the config, no verdict) fails the trial, the guard has put the engine
back on its last known good config, and the study goes on. Only after a commit is the
config measured: warm-up discarded, then windows until stable (:mod:`tuner._measure`).

A repeated suggestion (small discrete spaces make TPE repeat itself) is measured again and
the trial is told the mean of every measurement of that config: noise averages out where
the sampler keeps looking, and the best config is chosen by that mean, not by one lucky
window. The winner is then re-measured against the default in alternating blocks and
reported with a confidence interval, and applied through the guard (``reason="tuner"``:
automatically or after an operator's approval, per the engine's approval mode). Trials use
``reason="trial"``: starting the run is the operator's consent to experiment.
"""

from __future__ import annotations

import logging
import math
import statistics
import threading
import time
import warnings
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import optuna
from sqlalchemy.orm import Session

from controlplane.domain import SLO
from controlplane.domain import DomainError
from controlplane.domain import EngineUnreachableError
from controlplane.domain import RolloutState
from controlplane.domain import TuningRunState
from controlplane.engines import adapter_for
from controlplane.engines.base import EngineAdapter
from controlplane.guard import RolloutRunner
from controlplane.guard import propose
from controlplane.guard import restore_last_known_good
from controlplane.guard.runner import AdapterFactory
from controlplane.settings import Settings
from controlplane.store import configs
from controlplane.store import engines
from controlplane.store import rollouts
from controlplane.store import tuning
from controlplane.store.database import SessionFactory
from controlplane.store.leases import Lease
from tuner._measure import BackgroundLoad
from tuner._measure import CapacityMeasurer
from tuner._measure import LiveLoadMismatchError
from tuner._measure import LiveMeasurer
from tuner._measure import Measurement
from tuner._measure import Measurer
from tuner._measure import SyntheticMeasurer
from tuner._measure import first_model
from tuner._measure import goodput_threshold
from tuner._measure import window_of
from tuner._objective import Score
from tuner._objective import objective_names
from tuner._objective import score
from tuner._report import write_report
from tuner._results import TrialRecord
from tuner._results import applied_json
from tuner._results import best_config
from tuner._results import describe
from tuner._results import mean_ci
from tuner._results import record_json
from tuner._results import short_measurement
from tuner._results import significance
from tuner._results import slo_name
from tuner._results import to_ms
from tuner._results import worst_values
from tuner._space import TuningSpace
from tuner._space import config_key
from tuner._specs import TuningSpec
from tuner._study import fail_orphaned_trials
from tuner._study import make_sampler
from tuner._study import open_study
from tuner._study import opened_storage

log = logging.getLogger("tuner")
ACTOR = "tuner"
TRIAL_REASON = "trial"


@dataclass(frozen=True)
class Switched:
    """How a switch through the guard ended: no rollout at all (the engine served the
    config already), or the rollout, its state and the guard's verdict; ``seen`` is what the
    trial's own load measured on the new config until the guard's cut (a breach's numbers)."""

    rollout_id: int | None = None
    state: RolloutState | None = None
    verdict: Mapping[str, Any] = field(default_factory=dict)
    seen: Measurement | None = None

    @property
    def committed(self) -> bool:
        """The engine serves the config now (no rollout was needed, or it committed)."""
        return self.state is None or self.state is RolloutState.committed


@dataclass(frozen=True)
class TuningEvent:
    run_id: int
    kind: str  # phase | trial | done
    message: str
    done: int = 0
    budget: int = 0
    trial: TrialRecord | None = None


MeasurerFactory = Callable[["_Context"], Measurer]


@dataclass
class _Context:
    run_id: int
    engine_id: int
    study_name: str
    spec: TuningSpec
    slos: tuple[SLO, ...]
    adapter: EngineAdapter
    base_url: str
    stop: threading.Event
    records: list[TrialRecord] = field(default_factory=list)
    measurer: Measurer | None = None
    synthetic: SyntheticMeasurer | None = None
    warm_start: list[dict[str, Any]] = field(default_factory=list)


class Tuner:
    def __init__(
        self,
        *,
        session_factory: SessionFactory,
        storage_url: str,
        settings: Settings,
        adapter_factory: AdapterFactory = adapter_for,
        on_event: Callable[[TuningEvent], None] | None = None,
    ) -> None:
        self._sessions = session_factory
        self._url = storage_url
        self._settings = settings
        self._policy = settings.tuner
        self._adapter_factory = adapter_factory
        self._on_event = on_event or (lambda event: None)
        self._runner = RolloutRunner(
            session_factory=session_factory,
            policy=settings.guard,
            adapter_factory=adapter_factory,
        )

    # -- public ---------------------------------------------------------------------------

    def run(self, run_id: int, *, stop: threading.Event | None = None) -> dict[str, Any]:
        """Run (or resume) a pending tuning run to its end; returns the stored result."""
        stop = stop or threading.Event()
        with self._sessions() as session, session.begin():
            row = tuning.get_run(session, run_id)
            tuning.move(
                session, row, TuningRunState.running, actor=ACTOR, expect=(TuningRunState.pending,)
            )
            engine = engines.get_engine(session, row.engine_id)
            target = engines.engine_target(engine)
            spec = TuningSpec.from_json(row.spec)
            study_name, engine_id = row.study_name, row.engine_id
        adapter = self._adapter_factory(target)
        ctx = _Context(
            run_id=run_id,
            engine_id=engine_id,
            study_name=study_name,
            spec=spec,
            slos=spec.slo_objects(),
            adapter=adapter,
            base_url=target.url.rstrip("/"),
            stop=stop,
        )
        records = ctx.records

        def stamp(session: Session) -> bool:
            state = tuning.stamp(session, run_id, result={"done": len(records)})
            return state != TuningRunState.stopping

        lease = Lease(
            self._sessions,
            stamp,
            every_s=self._policy.lease_s,
            name=f"tuning-lease-{run_id}",
            on_stop=stop.set,
        )
        lease.start()
        final, result = TuningRunState.failed, {}
        try:
            result = self._tune(ctx)
            final = TuningRunState.stopped if stop.is_set() else TuningRunState.done
        except DomainError as exc:
            result = {"error": str(exc)}
            log.warning("tuning run %d failed: %s", run_id, exc)
            result["restored"] = self._restore(ctx)
        except Exception as exc:
            result = {"error": f"internal error: {type(exc).__name__}: {exc}"}
            log.exception("tuning run %d crashed", run_id)
            raise
        finally:
            lease.stop()
            if ctx.measurer is not None:
                ctx.measurer.close()
            adapter.close()
            result = {**result, "trials": [record_json(r) for r in ctx.records]}
            with self._sessions() as session, session.begin():
                row = tuning.get_run(session, run_id)
                tuning.move(
                    session,
                    row,
                    final,
                    actor=ACTOR,
                    expect=(TuningRunState.running, TuningRunState.stopping),
                    result=result,
                )
            self._emit(ctx, "done", f"run {run_id}: {final}")
        return result

    # -- the loop -------------------------------------------------------------------------

    def _tune(self, ctx: _Context) -> dict[str, Any]:
        spec = ctx.spec
        space = TuningSpace.of(ctx.adapter.search_space(), knobs=spec.knobs)
        ctx.measurer = self._measurer(ctx)
        sampler = make_sampler(
            spec.sampler, space=space, seed=spec.seed, budget=spec.trials, objective=spec.objective
        )
        with opened_storage(self._url) as opened:
            study = open_study(
                storage=opened,
                study_name=ctx.study_name,
                objective=spec.objective,
                sampler=sampler,
            )
            return self._study_run(ctx, study, space)

    def _study_run(self, ctx: _Context, study: optuna.Study, space: TuningSpace) -> dict[str, Any]:
        spec = ctx.spec
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(objective_names(spec.objective))
        study.set_user_attr("space", space.grid())
        study.set_user_attr("seed", spec.seed)
        study.set_user_attr("run_id", ctx.run_id)
        orphans = fail_orphaned_trials(study)
        assert ctx.measurer is not None
        ctx.measurer.resume(study.user_attrs)
        result = self._trials_and_confirm(ctx, study, space)
        result["orphaned_trials_failed"] = orphans
        if ctx.warm_start:
            result["warm_start"] = ctx.warm_start
        path = report_path(self._settings, ctx.study_name)
        try:
            write_report(path, study=study, slos=ctx.slos, summary=_summary(ctx, result))
            result["report"] = str(path)
        except OSError as exc:
            result["report_error"] = str(exc)
        return result

    def _trials_and_confirm(
        self, ctx: _Context, study: optuna.Study, space: TuningSpace
    ) -> dict[str, Any]:
        spec = ctx.spec
        finished = _finished(study)
        if not study.trials:
            params = space.params_of(spec.default_config)
            if params is not None:
                study.enqueue_trial(params, user_attrs={"kind": "baseline"})
            warm = self._warm_start(ctx, space, exclude=params)
            for config in warm:
                study.enqueue_trial(config, user_attrs={"kind": "warm"})
            if warm:
                ctx.warm_start = warm
                self._emit(ctx, "phase", f"warm start: the previous best configs first: {warm}")
        self._emit(ctx, "phase", f"{space.size()} configs, budget {spec.trials} trials")
        unsafe = 0
        while finished < spec.trials and not ctx.stop.is_set():
            trial = study.ask(space.distributions())
            record = self._trial(ctx, study, trial, space)
            ctx.records.append(record)
            finished += 1
            unsafe += record.outcome in ("breach", "failed")
            self._emit(ctx, "trial", describe(record), trial=record)
            if finished >= 4 and unsafe / finished >= self._policy.max_failed_fraction:
                self._emit(ctx, "phase", f"stopping: {unsafe} of {finished} trials unsafe")
                break
        result: dict[str, Any] = {}
        best = best_config(study, spec)
        result["best"] = best
        if ctx.stop.is_set():
            result["restored"] = self._restore(ctx)
            result["note"] = (
                "stopped before the end: no re-measurement, nothing applied; "
                + _restored_note(result["restored"])
            )
            return result
        if best is None:
            result["note"] = "no feasible config found"
            self._switch(ctx, spec.default_config)
            return result
        result.update(self._confirm(ctx, best["params"]))
        return result

    def _trial(
        self, ctx: _Context, study: optuna.Study, trial: optuna.Trial, space: TuningSpace
    ) -> TrialRecord:
        started = time.monotonic()
        params = dict(trial.params)
        key = config_key(params)
        repeated = any(
            config_key(t.params) == key
            for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        )
        kind = str(trial.user_attrs.get("kind") or ("repeat" if repeated else "trial"))
        trial.set_user_attr("kind", kind)

        def failed(error: str, rollout_id: int | None = None) -> TrialRecord:
            trial.set_user_attr("error", error[:500])
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return TrialRecord(
                trial.number, kind, params, "failed", None, rollout_id=rollout_id,
                error=error, duration_s=time.monotonic() - started,
            )  # fmt: skip

        try:
            switched = self._switch(ctx, params)
        except DomainError as exc:
            return failed(f"could not switch: {exc}")
        rollout_id = switched.rollout_id
        if rollout_id is not None:
            trial.set_user_attr("rollout_id", rollout_id)
        if not switched.committed:
            assert switched.state is not None
            verdict = switched.verdict
            unsafe = verdict.get("outcome") in ("breach", "quality")
            if unsafe and switched.state is RolloutState.rolled_back:
                return self._breached(ctx, study, trial, kind, params, switched, started)
            summary = verdict.get("summary") or switched.state.value
            return failed(f"rollout {rollout_id} {switched.state.value}: {summary}", rollout_id)
        try:
            assert ctx.measurer is not None
            m = ctx.measurer.measure(stop=ctx.stop)
        except EngineUnreachableError as exc:
            self._back_to_lkg(ctx)
            return failed(f"engine failed mid-trial: {exc}", rollout_id)
        except LiveLoadMismatchError as exc:
            return failed(str(exc), rollout_id)
        if kind == "baseline":
            attrs, message = ctx.measurer.baseline_measured(m)
            for name, value in attrs.items():
                study.set_user_attr(name, value)
            if message:
                self._emit(ctx, "phase", message)
        s = score(m, ctx.slos, objective=ctx.spec.objective, margin=ctx.spec.margin)
        raw = [list(s.values)]
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            if config_key(t.params) == key and t.user_attrs.get("raw_values"):
                raw.append(list(t.user_attrs["raw_values"]))
        values = tuple(statistics.fmean(v[i] for v in raw) for i in range(len(s.values)))
        trial.set_user_attr("raw_values", list(s.values))
        trial.set_user_attr("measurements", len(raw))
        trial.set_user_attr("measurement", short_measurement(m))
        quality = quality_constraint(switched.verdict, trial)
        for name, value in {**s.constraints, **quality}.items():
            trial.set_constraint(name, value)
        study.tell(trial, list(values))
        return TrialRecord(
            trial.number, kind, params, "feasible" if s.feasible else "infeasible", values,
            goodput=m.goodput, throughput=m.throughput, p99_ms=to_ms(m.p99_s), stable=m.stable,
            rollout_id=rollout_id, duration_s=time.monotonic() - started,
        )  # fmt: skip

    def _warm_start(
        self, ctx: _Context, space: TuningSpace, *, exclude: dict[str, Any] | None
    ) -> list[dict[str, Any]]:
        """The best configs earlier finished runs on this engine found (newest first), and a
        known-good config someone set by hand, restricted to this run's space: measured
        right after the baseline, so a study on a tuned engine starts where the last ended.
        """
        found: list[dict[str, Any]] = []
        keys = {config_key(exclude)} if exclude is not None else set()
        with self._sessions() as session:
            candidates: list[dict[str, Any]] = []
            for run in tuning.list_runs(session, engine_id=ctx.engine_id, limit=50):
                best = (run.result or {}).get("best") if run.id != ctx.run_id else None
                if run.state == TuningRunState.done and isinstance(best, dict):
                    candidates.append(dict(best.get("params") or {}))
            lkg = configs.last_known_good(session, ctx.engine_id)
            if lkg is not None:
                candidates.append(dict(lkg.config))
        for candidate in candidates:
            params = space.params_of({**ctx.spec.default_config, **candidate})
            if params is None or config_key(params) in keys:
                continue
            keys.add(config_key(params))
            found.append(params)
            if len(found) >= self._policy.warm_start_configs:
                break
        return found

    def _breached(
        self,
        ctx: _Context,
        study: optuna.Study,
        trial: optuna.Trial,
        kind: str,
        params: dict[str, Any],
        switched: Switched,
        started: float,
    ) -> TrialRecord:
        """Rolled back for an SLO breach: infeasible, with the numbers seen before the cut."""
        seen, verdict, rollout_id = switched.seen, switched.verdict, switched.rollout_id
        if seen is not None:
            s = score(seen, ctx.slos, objective=ctx.spec.objective, margin=ctx.spec.margin)
        else:
            s = Score(values=worst_values(ctx.spec.objective), constraints={})
        constraints = {slo.name: s.constraints.get(slo.name, 0.0) for slo in ctx.slos}
        breached = slo_name(str(verdict.get("slo") or ""), ctx.slos)
        if breached is not None:
            observed = verdict.get("quantile_s")
            slo = next(x for x in ctx.slos if x.name == breached)
            if isinstance(observed, int | float):
                value = (observed - slo.threshold * (1 - ctx.spec.margin)) / slo.threshold
            else:
                value = 1.0
            constraints[breached] = max(value, constraints.get(breached, 0.0), 1e-3)
        constraints.update(quality_constraint(verdict, trial))
        if all(v <= 0 for v in constraints.values()):
            constraints[ctx.slos[0].name] = 1.0
        trial.set_user_attr("breach", str(verdict.get("summary", ""))[:500])
        for name, value in constraints.items():
            trial.set_constraint(name, value)
        study.tell(trial, list(s.values))
        return TrialRecord(
            trial.number, kind, params, "breach", s.values,
            goodput=seen.goodput if seen else None,
            p99_ms=to_ms(seen.p99_s) if seen else None,
            rollout_id=rollout_id, error=str(verdict.get("summary", "")),
            duration_s=time.monotonic() - started,
        )  # fmt: skip

    # -- switching configs through the guard ----------------------------------------------

    def _switch(
        self,
        ctx: _Context,
        params: dict[str, Any],
        *,
        reason: str = TRIAL_REASON,
        stop: threading.Event | None = None,
    ) -> Switched:
        """Put the engine on ``params`` through a guarded rollout (none if it serves them).
        ``stop`` ends the guard's bake early (default: the run's stop)."""
        current = ctx.adapter.current_config()
        changes = {k: v for k, v in params.items() if current.get(k) != v}
        if not changes:
            return Switched()
        with self._sessions() as session, session.begin():
            engine = engines.get_engine(session, ctx.engine_id)
            plan = propose(
                session,
                engine=engine,
                adapter=ctx.adapter,
                changes=changes,
                reason=reason,
                actor=f"{ACTOR}:run-{ctx.run_id}",
                bake_s=self._policy.bake_s or self._settings.guard.bake_s,
                quality=ctx.spec.quality,
            )
        assert plan.rollout_id is not None
        if plan.awaiting_approval:
            return Switched(
                plan.rollout_id, RolloutState.pending, {"outcome": "awaiting_approval"}
            )
        bake_load = ctx.measurer.bake_load() if ctx.measurer is not None else ctx.synthetic
        load = BackgroundLoad(bake_load) if bake_load is not None else None
        if load is not None:
            load.__enter__()
        try:
            state = self._runner.execute(plan.rollout_id, stop=stop or ctx.stop)
        finally:
            if load is not None:
                load.stop()
        with self._sessions() as session:
            verdict = dict(
                rollouts.get_rollout(session, plan.rollout_id).evidence.get("verdict", {})
            )
        seen = None
        if load is not None and load.results:
            # The chunks after the guard's baseline ran on the new config until the cut.
            skip = math.ceil(self._settings.guard.baseline_s)
            chunks = load.results[skip:] or load.results[-1:]
            windows = tuple(
                window_of(r, ctx.slos, goodput_slo_s=goodput_threshold(ctx.slos)) for r in chunks
            )
            seen = Measurement(windows, stable=False, used=len(windows))
        return Switched(plan.rollout_id, state, verdict, seen)

    def _back_to_lkg(self, ctx: _Context) -> None:
        with self._sessions() as session:
            lkg = configs.last_known_good(session, ctx.engine_id)
            config = dict(lkg.config) if lkg else dict(ctx.spec.default_config)
        restore = restore_last_known_good(
            ctx.adapter, config, timeout_s=self._settings.guard.rollback_timeout_s
        )
        self._emit(ctx, "phase", f"engine back on last known good: {restore['restored']}")

    # -- the end: re-measure, apply -------------------------------------------------------

    def _confirm(self, ctx: _Context, best: dict[str, Any]) -> dict[str, Any]:
        """Re-measure best and default in blocks, then apply the best through the guard.

        On an engine that commits tuner changes by itself, the switch to the best config
        *is* the apply (``reason="tuner"``), measured last so the engine stays on it. On a
        manual-approval engine (or with ``apply_best`` off) the best is measured first, the
        default last, so the engine ends where it started; the best is then proposed for an
        operator to approve (or only reported).
        """
        spec = ctx.spec
        default = {k: spec.default_config[k] for k in best if k in spec.default_config}
        assert ctx.measurer is not None
        out: dict[str, Any] = {}
        if config_key(best) == config_key(default):
            out["note"] = "the default is the best config found: nothing to apply"
            self._switch(ctx, default)
            return out
        with self._sessions() as session:
            manual = engines.get_engine(session, ctx.engine_id).approval_mode == "manual"
        self._emit(ctx, "phase", f"re-measuring best {best} against the default")
        end_on_default = manual or not spec.apply_best
        order = (
            [("best", best), ("default", default)]
            if end_on_default
            else [("default", default), ("best", best)]
        )
        samples: dict[str, list[float]] = {"best": [], "default": []}
        for label, config in order:
            apply_now = label == "best" and not manual and spec.apply_best
            reason = "tuner" if apply_now else TRIAL_REASON
            switched = self._switch(ctx, config, reason=reason)
            if apply_now:
                out["applied"] = applied_json(
                    switched.rollout_id, switched.state, dict(switched.verdict)
                )
            if not switched.committed:
                why = switched.verdict.get("summary", switched.state)
                out["note"] = f"could not re-measure {label}: {why}"
                return out
            for _ in range(spec.repeats):
                try:
                    m = ctx.measurer.measure(stop=ctx.stop)
                except LiveLoadMismatchError as exc:
                    out["note"] = f"could not re-measure {label}: {exc}"
                    return out
                value = score(m, ctx.slos, objective=spec.objective, margin=spec.margin)
                samples[label].append(value.values[0])
        out["remeasured"] = {label: mean_ci(values) for label, values in samples.items()}
        out["significance"] = significance(out["remeasured"]["best"], out["remeasured"]["default"])
        base = out["remeasured"]["default"]["mean"]
        tuned = out["remeasured"]["best"]["mean"]
        out["improvement"] = (
            (base / tuned if spec.objective == "p99" else tuned / base) if base and tuned else None
        )
        if spec.objective == "capacity":
            ratio = f"{tuned / base:.2f}x" if base else "the default sustains no rate tried"
            out["headline"] = (
                f"capacity within {', '.join(s.spec() for s in ctx.slos)}: "
                f"{tuned:.1f} req/s tuned vs {base:.1f} req/s default ({ratio})"
            )
        if manual and spec.apply_best:
            switched = self._switch(ctx, best, reason="tuner")
            out["applied"] = applied_json(
                switched.rollout_id, switched.state, dict(switched.verdict)
            )
        if "applied" in out:
            self._emit(ctx, "phase", f"best config through the guard: {out['applied']}")
        return out

    # -- leaving the engine as the run found it ------------------------------------------

    def _restore(self, ctx: _Context) -> dict[str, Any]:
        """Back to the pre-study config through the guard, under the run's own load (the
        guard needs traffic for a verdict). Its own stop: the run's is set by now."""
        try:
            if ctx.synthetic is None and ctx.spec.load_profile().mode != "live":
                ctx.synthetic = self._synthetic(ctx)
            switched = self._switch(ctx, dict(ctx.spec.default_config), stop=threading.Event())
        except DomainError as exc:
            log.warning("tuning run %d: engine not restored: %s", ctx.run_id, exc)
            return {"restored": False, "error": str(exc)}
        state = switched.state
        if state is not None:
            log.info("tuning run %d: pre-study config %s (rollout %s)", ctx.run_id,
                     "restored" if switched.committed else state.value,
                     switched.rollout_id)  # fmt: skip
        return {
            "restored": switched.committed,
            "rollout_id": switched.rollout_id,
            "state": None if state is None else state.value,
            **({} if switched.committed else {"summary": str(switched.verdict.get("summary"))}),
        }

    def restore_pre_study(self, run_id: int) -> dict[str, Any]:
        """Put the engine of a run that did not finish (an orphan a sweep found) back on the
        config it served before the study, through the guard."""
        with self._sessions() as session:
            row = tuning.get_run(session, run_id)
            target = engines.engine_target(engines.get_engine(session, row.engine_id))
            spec = TuningSpec.from_json(row.spec)
            engine_id, study_name = row.engine_id, row.study_name
        adapter = self._adapter_factory(target)
        ctx = _Context(
            run_id=run_id,
            engine_id=engine_id,
            study_name=study_name,
            spec=spec,
            slos=spec.slo_objects(),
            adapter=adapter,
            base_url=target.url.rstrip("/"),
            stop=threading.Event(),
        )
        try:
            return self._restore(ctx)
        finally:
            adapter.close()

    # -- plumbing -------------------------------------------------------------------------

    def _synthetic(self, ctx: _Context) -> SyntheticMeasurer:
        profile = ctx.spec.load_profile()
        return SyntheticMeasurer(
            profile=profile,
            base_url=ctx.base_url,
            model=profile.model or first_model(ctx.base_url),
            slos=ctx.slos,
            policy=self._policy,
            adapter=ctx.adapter,
        )

    def _measurer(self, ctx: _Context) -> Measurer:
        profile = ctx.spec.load_profile()
        if profile.mode == "live":
            return LiveMeasurer(adapter=ctx.adapter, slos=ctx.slos, policy=self._policy)
        ctx.synthetic = self._synthetic(ctx)
        if ctx.spec.objective == "capacity":
            start = profile.rate if profile.rate is not None else self._policy.capacity_start_rps
            ctx.synthetic.set_rate(start)
            return CapacityMeasurer(
                ctx.synthetic,
                slos=ctx.slos,
                policy=self._policy,
                margin=ctx.spec.margin,
                start_rps=start,
            )
        return ctx.synthetic

    def _emit(
        self, ctx: _Context, kind: str, message: str, *, trial: TrialRecord | None = None
    ) -> None:
        event = TuningEvent(
            ctx.run_id, kind, message, done=len(ctx.records), budget=ctx.spec.trials, trial=trial
        )
        try:
            self._on_event(event)
        except Exception:  # noqa: BLE001 - a broken progress display must not stop a run
            log.exception("progress callback failed")


def quality_constraint(verdict: Mapping[str, Any], trial: optuna.Trial) -> dict[str, float]:
    """The constraint hook of the quality spec: the guard's probe verdict (when the trial's
    change was probed) as ``quality`` (<= 0 feasible). A rollback for quality is a positive
    value, so the config is infeasible and never the best. The trial keeps the measures for
    the report."""
    probed = verdict.get("quality")
    if not isinstance(probed, dict):
        return {}
    trial.set_user_attr(
        "quality",
        {k: probed.get(k) for k in ("spec", "passed", "agreement", "exact", "kl", "diverged")},
    )
    value = probed.get("constraint")
    if not isinstance(value, int | float):
        value = 1.0  # the probe could not run: not shown to be faithful
    if verdict.get("outcome") == "quality":
        value = max(float(value), 1e-3)
    return {"quality": float(value)}


def _restored_note(restored: dict[str, Any]) -> str:
    if restored.get("restored"):
        return "engine back on its pre-study config"
    return f"engine NOT back on its pre-study config: {restored.get('error') or restored}"


def _finished(study: optuna.Study) -> int:
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
    return len(study.get_trials(deepcopy=False, states=states))


def _summary(ctx: _Context, result: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": ctx.run_id,
        "engine": ctx.spec.engine,
        "objective": ctx.spec.objective,
        "slos": list(ctx.spec.slos) + ([ctx.spec.quality] if ctx.spec.quality else []),
        "margin": ctx.spec.margin,
        "load": ctx.spec.load,
        "default_config": ctx.spec.default_config,
        **{k: v for k, v in result.items() if k != "trials"},
    }


def report_path(settings: Settings, study_name: str) -> Path:
    return settings.data_dir / "reports" / f"{study_name}.html"
