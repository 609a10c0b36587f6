"""A load test, start to finish: validated and recorded (``pending``), then the sweep step
by step, each step stored as it ends, then the answer (knee, saturation, the regression
gate's verdict against a baseline) and the HTML report.

A load test changes nothing on the engine; it refuses to start while a rollout or a tuning
run is in flight there (its load would skew the guard's judgement and the tuner's
measurements, and theirs would skew its curve). The sweep stops by itself after a step that
fails badly (most requests failing, or p99 far past the SLO): the steps beyond it would only
pile load on a deployment already past its limit.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from controlplane.domain import SLO
from controlplane.domain import ConflictError
from controlplane.domain import DomainError
from controlplane.domain import LoadTestState
from controlplane.domain import ValidationError
from controlplane.domain import parse_slo
from controlplane.engines import adapter_for
from controlplane.guard.runner import AdapterFactory
from controlplane.schemas.loadtest import LoadTestCreate
from controlplane.settings import LoadTestSettings
from controlplane.settings import Settings
from controlplane.store import engines
from controlplane.store import loadtests
from controlplane.store import rollouts
from controlplane.store import slos as slo_store
from controlplane.store import tuning
from controlplane.store.base import utcnow
from controlplane.store.database import SessionFactory
from controlplane.store.leases import Lease
from controlplane.store.models import LoadTestRow
from tuner._measure import first_model
from tuner.loadgen import LoadSpec
from tuner.loadgen import RequestShape
from tuner.loadtest._analysis import GateVerdict
from tuner.loadtest._analysis import compare
from tuner.loadtest._analysis import knee
from tuner.loadtest._analysis import saturation
from tuner.loadtest._report import write_report
from tuner.loadtest._step import StepFigures
from tuner.loadtest._step import bad_step
from tuner.loadtest._step import measure_step

log = logging.getLogger("tuner.loadtest")
ACTOR = "loadtest"


@dataclass(frozen=True)
class LoadTestSpec:
    """The resolved request, stored as the row's ``spec``."""

    engine: str
    kind: str  # concurrency | rate
    steps: tuple[float, ...]
    arrivals: str
    shapes: tuple[tuple[int, int, float], ...]
    prompts: tuple[tuple[str, int | None], ...]
    slos: tuple[str, ...]
    model: str | None
    seed: int
    baseline: int | None

    def slo_objects(self) -> tuple[SLO, ...]:
        return tuple(parse_slo(s) for s in self.slos)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["steps"] = list(self.steps)
        data["shapes"] = [list(s) for s in self.shapes]
        data["prompts"] = [list(p) for p in self.prompts]
        data["slos"] = list(self.slos)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoadTestSpec:
        return cls(
            engine=data["engine"],
            kind=data["kind"],
            steps=tuple(float(s) for s in data["steps"]),
            arrivals=data["arrivals"],
            shapes=tuple((int(p), int(m), float(w)) for p, m, w in data["shapes"]),
            prompts=tuple((str(t), None if n is None else int(n)) for t, n in data["prompts"]),
            slos=tuple(data["slos"]),
            model=data.get("model"),
            seed=int(data.get("seed", 0)),
            baseline=data.get("baseline"),
        )

    def sweep_text(self) -> str:
        """The steps as a list a new request can repeat (the gate's default sweep)."""
        return ",".join(f"{s:g}" for s in self.steps)


def _check_bounds(kind: str, steps: tuple[float, ...], policy: LoadTestSettings) -> None:
    if len(steps) > policy.max_steps:
        raise ValidationError(
            f"{kind} sweep has {len(steps)} steps; at most {policy.max_steps} "
            "(CP_LOADTEST__MAX_STEPS)",
            field=kind,
        )
    limit = policy.max_concurrency if kind == "concurrency" else policy.max_rate
    if steps[-1] > limit:
        setting = "MAX_CONCURRENCY" if kind == "concurrency" else "MAX_RATE"
        raise ValidationError(
            f"{kind} {steps[-1]:g} is beyond the configured bound {limit:g} "
            f"(CP_LOADTEST__{setting})",
            field=kind,
        )


def start_load_test(
    session: Session,
    *,
    engine_ref: str | int,
    request: LoadTestCreate,
    policy: LoadTestSettings,
    actor: str,
) -> LoadTestRow:
    """Validate a load-test request and record it (``pending``); touches no engine.

    Raises:
        NotFoundError: no such engine, or no such baseline.
        ValidationError: a step beyond the configured bounds, no SLO, a baseline that is
            not a finished load test of the same engine and kind.
        ConflictError: the engine has a rollout, a tuning run or a load test in progress.
    """
    engine = engines.get_engine(session, engine_ref)
    steps = request.steps()
    _check_bounds(request.kind, steps, policy)
    if len(request.prompts) > policy.max_prompts:
        raise ValidationError(
            f"{len(request.prompts)} prompts; at most {policy.max_prompts}", field="prompts"
        )
    slo_specs = list(request.slo) or [s.spec() for s in slo_store.engine_slos(session, engine.id)]
    if not slo_specs:
        raise ValidationError(
            f"engine {engine.name!r} has no SLO to find the knee by: pass --slo 'p99_ms<=300' "
            f"or add one with `cplane slo set {engine.name} 'p99_ms<=500'`",
            field="slo",
        )
    if request.baseline is not None:
        base = loadtests.get(session, request.baseline)
        if base.engine_id != engine.id or base.kind != request.kind:
            raise ValidationError(
                f"baseline {base.id} is a {base.kind} sweep of engine {base.engine_id}, not a "
                f"{request.kind} sweep of {engine.name!r}",
                field="baseline",
            )
        if base.state != LoadTestState.done:
            raise ValidationError(
                f"baseline {base.id} is {base.state}: only a finished load test is a baseline",
                field="baseline",
            )
    active = rollouts.active_rollout(session, engine.id)
    if active is not None:
        raise ConflictError(
            f"engine {engine.name!r} is busy: rollout {active.id} is {active.state}"
        )
    run = tuning.active_run(session, engine.id)
    if run is not None:
        raise ConflictError(f"engine {engine.name!r} is being tuned by run {run.id}")
    spec = LoadTestSpec(
        engine=engine.name,
        kind=request.kind,
        steps=steps,
        arrivals=request.arrivals,
        shapes=tuple((s.prompt_len, s.max_tokens, s.weight) for s in request.shapes),
        prompts=tuple((p.prompt, p.max_tokens) for p in request.prompts),
        slos=tuple(slo_specs),
        model=request.model,
        seed=request.seed,
        baseline=request.baseline,
    )
    return loadtests.create(
        session, engine_id=engine.id, kind=spec.kind, spec=spec.to_json(), actor=actor
    )


def sweep_orphaned_load_tests(
    sessions: SessionFactory, *, stale_after_s: float, actor: str = "loadtest-sweep"
) -> list[int]:
    """Load tests left ``running`` by a process that died become ``interrupted``."""
    cutoff = utcnow() - timedelta(seconds=stale_after_s)
    swept = []
    with sessions() as session, session.begin():
        for row in loadtests.stale(session, cutoff=cutoff):
            try:
                loadtests.move(
                    session,
                    row,
                    LoadTestState.interrupted,
                    actor=actor,
                    expect=(LoadTestState.running,),
                    result={"note": "the process running it stopped"},
                )
            except ConflictError:
                continue
            swept.append(row.id)
    return swept


@dataclass(frozen=True)
class LoadTestOutcome:
    """What a finished load test found."""

    id: int
    state: LoadTestState
    steps: tuple[StepFigures, ...]
    knee: StepFigures | None
    saturation: StepFigures | None
    stopped_by: str | None = None
    """Why the sweep ended before its last step (a bad step, an operator), if it did."""
    gate: GateVerdict | None = None
    report: str | None = None
    error: str | None = None
    config: dict[str, Any] = field(default_factory=dict)

    def result_json(self) -> dict[str, Any]:
        return {
            "knee": None if self.knee is None else self.knee.as_json(),
            "saturation": None if self.saturation is None else self.saturation.as_json(),
            "stopped_by": self.stopped_by,
            "gate": None if self.gate is None else self.gate.as_json(),
            "report": self.report,
            "error": self.error,
            "config": self.config,
        }


def report_path(settings: Settings, load_test_id: int) -> Path:
    return settings.data_dir / "reports" / f"loadtest-{load_test_id}.html"


class LoadTester:
    def __init__(
        self,
        *,
        session_factory: SessionFactory,
        settings: Settings,
        adapter_factory: AdapterFactory = adapter_for,
        on_step: Callable[[StepFigures], None] | None = None,
    ) -> None:
        self._sessions = session_factory
        self._settings = settings
        self._adapter_factory = adapter_factory
        self._on_step = on_step or (lambda step: None)

    def run(self, load_test_id: int, *, stop: threading.Event | None = None) -> LoadTestOutcome:
        """Run a pending load test to its end; returns what it found (also stored)."""
        stop = stop or threading.Event()
        with self._sessions() as session, session.begin():
            row = loadtests.get(session, load_test_id)
            loadtests.move(
                session, row, LoadTestState.running, actor=ACTOR, expect=(LoadTestState.pending,)
            )
            target = engines.engine_target(engines.get_engine(session, row.engine_id))
            spec = LoadTestSpec.from_json(row.spec)
        log.info("load test %d on %s: %s sweep %s", load_test_id, spec.engine, spec.kind,
                 spec.sweep_text())  # fmt: skip

        def beat(session: Session) -> bool:
            loadtests.stamp(session, load_test_id)
            return not loadtests.stop_requested(session, load_test_id)

        lease = Lease(
            self._sessions,
            beat,
            every_s=self._settings.tuner.lease_s,
            name=f"loadtest-lease-{load_test_id}",
            on_stop=stop.set,
        )
        lease.start()
        steps: list[StepFigures] = []
        state, stopped_by, error = LoadTestState.failed, None, None
        config: dict[str, Any] = {}
        try:
            adapter = self._adapter_factory(target)
            try:
                config = dict(adapter.current_config())
            finally:
                adapter.close()
            stopped_by = self._sweep(load_test_id, spec, target.url.rstrip("/"), steps, stop)
            state = LoadTestState.stopped if stop.is_set() else LoadTestState.done
            if stop.is_set():
                stopped_by = "stopped by an operator"
        except DomainError as exc:
            error = str(exc)
            log.warning("load test %d failed: %s", load_test_id, exc)
        except Exception as exc:
            error = f"internal error: {type(exc).__name__}: {exc}"
            log.exception("load test %d crashed", load_test_id)
            raise
        finally:
            lease.stop()
            outcome = self._finish(load_test_id, spec, steps, state, stopped_by, error, config)
        return outcome

    def _sweep(
        self,
        load_test_id: int,
        spec: LoadTestSpec,
        base_url: str,
        steps: list[StepFigures],
        stop: threading.Event,
    ) -> str | None:
        slos = spec.slo_objects()
        model = spec.model or first_model(base_url)
        policy = self._settings.loadtest
        shapes = tuple(RequestShape(p, m, w) for p, m, w in spec.shapes)
        if spec.prompts:
            # A prompt file's own output lengths, where it gives them, replace the mix's.
            lengths = [n for _, n in spec.prompts if n is not None]
            if lengths:
                shapes = tuple(RequestShape(0, n) for n in sorted(set(lengths)))
        prompts = tuple(text for text, _ in spec.prompts)
        for index, offered in enumerate(spec.steps):
            if stop.is_set():
                return None

            def spec_for(duration_s: float, seed: int, offered: float = offered) -> LoadSpec:
                closed = spec.kind == "concurrency"
                return LoadSpec(
                    base_url=base_url,
                    model=model,
                    mode="closed" if closed else spec.arrivals,  # type: ignore[arg-type]
                    rate=None if closed else offered,
                    concurrency=int(offered) if closed else None,
                    duration_s=duration_s,
                    shapes=shapes,
                    stream=True,
                    timeout_s=max(10.0, duration_s * 4),
                    seed=spec.seed + seed,
                    extra_body={"ignore_eos": True},
                    prompts=prompts,
                )

            step = measure_step(
                index, offered, spec_for, slos=slos, policy=self._settings.tuner, stop=stop
            )
            steps.append(step)
            with self._sessions() as session, session.begin():
                loadtests.add_step(session, load_test_id, **step.as_json())
            try:
                self._on_step(step)
            except Exception:  # noqa: BLE001 - a broken progress display must not stop a run
                log.exception("progress callback failed")
            reason = bad_step(
                step, slos, error_rate=policy.stop_error_rate, p99_factor=policy.stop_p99_factor
            )
            if reason is not None:
                log.info("load test %d stops early: %s", load_test_id, reason)
                return reason
        return None

    def _finish(
        self,
        load_test_id: int,
        spec: LoadTestSpec,
        steps: list[StepFigures],
        state: LoadTestState,
        stopped_by: str | None,
        error: str | None,
        config: dict[str, Any],
    ) -> LoadTestOutcome:
        policy = self._settings.loadtest
        slos = spec.slo_objects()
        found_knee = knee(steps)
        found_saturation = saturation(steps, gain=policy.saturation_gain)
        gate = None
        if spec.baseline is not None and steps and state is LoadTestState.done:
            with self._sessions() as session:
                baseline = [StepFigures.of_row(r) for r in loadtests.steps(session, spec.baseline)]
            gate = compare(
                baseline,
                steps,
                baseline_id=spec.baseline,
                noise_factor=policy.noise_factor,
                min_tolerance=policy.min_tolerance,
            )
        report = None
        if steps:
            path = report_path(self._settings, load_test_id)
            try:
                write_report(
                    path,
                    title=f"Load test {load_test_id}: {spec.engine}",
                    steps=steps,
                    kind=spec.kind,
                    slos=slos,
                    knee=found_knee,
                    saturation=found_saturation,
                    notes=[n for n in (stopped_by, error) if n],
                )
                report = str(path)
            except OSError as exc:
                log.warning("load test %d: report not written: %s", load_test_id, exc)
        outcome = LoadTestOutcome(
            id=load_test_id,
            state=state,
            steps=tuple(steps),
            knee=found_knee,
            saturation=found_saturation,
            stopped_by=stopped_by,
            gate=gate,
            report=report,
            error=error,
            config=config,
        )
        with self._sessions() as session, session.begin():
            row = loadtests.get(session, load_test_id)
            loadtests.move(
                session,
                row,
                state,
                actor=ACTOR,
                expect=(LoadTestState.running,),
                result=outcome.result_json(),
            )
        log.info("load test %d: %s", load_test_id, state.value)
        return outcome


class LoadTestService:
    """Runs load tests in daemon threads of the API process (like the tuning service)."""

    def __init__(self, tester_factory: Callable[[], LoadTester]) -> None:
        self._factory = tester_factory
        self._stops: dict[int, threading.Event] = {}
        self._threads: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()

    def submit(self, load_test_id: int) -> threading.Thread:
        stop = threading.Event()
        thread = threading.Thread(
            target=self._run, args=(load_test_id, stop), name=f"loadtest-{load_test_id}",
            daemon=True,
        )  # fmt: skip
        with self._lock:
            self._stops[load_test_id] = stop
            self._threads[load_test_id] = thread
        thread.start()
        return thread

    def stop(self, load_test_id: int) -> bool:
        with self._lock:
            stop = self._stops.get(load_test_id)
        if stop is None:
            return False
        stop.set()
        return True

    def shutdown(self, *, timeout_s: float = 30.0) -> None:
        with self._lock:
            for stop in self._stops.values():
                stop.set()
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(timeout_s)

    def _run(self, load_test_id: int, stop: threading.Event) -> None:
        try:
            self._factory().run(load_test_id, stop=stop)
        except Exception:  # noqa: BLE001 - recorded on the row; nothing to re-raise to
            log.exception("load test %d crashed", load_test_id)
        finally:
            with self._lock:
                self._stops.pop(load_test_id, None)
                self._threads.pop(load_test_id, None)
