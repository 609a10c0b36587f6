"""Recorded experiments: validate, record and inject in one step (nothing applied and
nothing recorded when any part fails), then hold, remove and record the outcome with the
guard's reaction read from the store. Shared by the CLI and the API.

Not imported by the package: the injector's helper processes (the delaying proxy, the
watchdog) start as ``python -m controlplane.chaos...`` and must not pay for the store's
imports before they are ready."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from typing import Any

from controlplane.chaos._experiment import hold
from controlplane.chaos._inject import Injection
from controlplane.chaos._inject import Injector
from controlplane.chaos._inject import sweep_all
from controlplane.chaos._owners import endpoint
from controlplane.chaos._owners import owning_engine
from controlplane.chaos._spec import parse_fault
from controlplane.chaos._spec import parse_target
from controlplane.chaos._steady import METRICS
from controlplane.chaos._steady import evaluate
from controlplane.domain import SLO
from controlplane.domain import ValidationError
from controlplane.domain import parse_slo
from controlplane.schemas.chaos import ChaosExperimentRead
from controlplane.schemas.chaos import ChaosRunCreate
from controlplane.settings import Settings
from controlplane.store import chaos as chaos_store
from controlplane.store import engines
from controlplane.store import slos as slo_store
from controlplane.store.base import utcnow
from controlplane.store.database import SessionFactory
from controlplane.store.database import unit_of_work

#: The longest the evaluation of a fault's cost runs on after the fault.
AFTERMATH_MAX_S = 300.0


@dataclass
class Started:
    experiment_id: int
    injection: Injection
    duration_s: float
    engine_id: int | None
    expected: str
    started_at: datetime
    hypothesis: list[str] = field(default_factory=list)
    # How long to wait after the fault for the collectors' last scrape to reach the store.
    settle_s: float = 0.0


def key_of(experiment_id: int) -> str:
    return f"exp-{experiment_id}"


def start(
    factory: SessionFactory, settings: Settings, body: ChaosRunCreate, *, actor: str
) -> Started:
    """Validate, record and inject; raise with nothing applied and nothing recorded."""
    fault = parse_fault(body.fault)
    target = parse_target(body.target)
    if body.duration_s > settings.chaos.max_duration_s:
        raise ValidationError(
            f"duration: {body.duration_s:g} s is above the limit of "
            f"{settings.chaos.max_duration_s:g} s (CP_CHAOS__MAX_DURATION_S)",
            field="duration_s",
        )
    for spec in body.hypothesis:
        parse_slo(spec, window_s=30.0)
    state_dir = settings.chaos_state_dir
    # Start-up sweep of this state directory: orphans of a crashed run go before a new one.
    sweep_all(settings.chaos, state_dir, scan=False)
    with unit_of_work(factory) as session:
        engine_id = engines.get_engine(session, body.engine).id if body.engine else None
        if target.kind == "pid":
            assert target.pid is not None
            # Only an engine's processes: the named one's, else any registered engine's.
            rows = (
                [engines.get_engine(session, body.engine)]
                if body.engine
                else engines.list_engines(session)
            )
            endpoints = [e for r in rows if (e := endpoint(r.name, r.url)) is not None]
            owning_engine(target.pid, endpoints)
        row = chaos_store.start_experiment(
            session,
            target=str(target),
            fault=fault.text,
            duration_s=body.duration_s,
            expected=body.expected,
            hypothesis=body.hypothesis,
            engine_id=engine_id,
            actor=actor,
        )
        injector = Injector(settings.chaos, state_dir)
        injection = injector.inject(key_of(row.id), target, fault, ttl_s=body.duration_s)
        try:
            chaos_store.set_mechanisms(session, row, injection.mechanisms)
            assert row.started_at is not None
            started = Started(
                row.id,
                injection,
                body.duration_s,
                engine_id,
                body.expected,
                row.started_at,
                hypothesis=list(body.hypothesis),
                settle_s=settings.collectors.scrape_interval_s
                + settings.collectors.flush_interval_s
                + 1.0,
            )
        except BaseException:
            injection.remove()
            raise
    return started


def finish(
    factory: SessionFactory,
    started: Started,
    *,
    actor: str,
    stop: threading.Event | None = None,
) -> ChaosExperimentRead:
    """Hold the fault, remove it, and record counters, cleanup, the guard's reaction and
    what the fault cost the engine (failed requests, seconds in SLO violation)."""
    error = None
    result: dict[str, Any] = {}
    try:
        outcome = hold(started.injection, started.duration_s, stop=stop)
        result = outcome.as_dict()
        state = "aborted" if outcome.aborted else "completed"
    except Exception as exc:  # noqa: BLE001 - recorded on the experiment; cleanup already ran
        started.injection.remove()
        state, error = "failed", str(exc)
    ended = utcnow()
    failed: int | None = None
    violation_s: float | None = None
    if started.engine_id is not None:
        steady = steady_state(factory, started, until=ended)
        result["steady_state"] = steady
        failed, violation_s = steady["failed_requests"], steady["slo_violation_s"]
        if violation_s is not None:
            result["hypothesis_held"] = violation_s == 0
    with unit_of_work(factory) as session:
        if started.engine_id is not None:
            guard = chaos_store.guard_reaction(
                session, engine_id=started.engine_id, since=started.started_at, until=ended
            )
            result["guard"] = guard
            if started.expected != "any":
                result["expectation_met"] = guard["reaction"] == started.expected
        row = chaos_store.finish_experiment(
            session,
            started.experiment_id,
            state=state,
            result=result,
            actor=actor,
            error=error,
            failed_requests=failed,
            slo_violation_s=violation_s,
        )
        return ChaosExperimentRead.model_validate(row)


def steady_state(factory: SessionFactory, started: Started, *, until: datetime) -> dict[str, Any]:
    """Failed requests and seconds in SLO violation from the engine's stored scrapes.

    The SLOs are the experiment's hypothesis when it has one, else the engine's own. A
    fault's cost outlasts it (requests held by a paused engine finish after it resumes, and
    a hung engine answers no scrape at all), so when the engine is being collected the
    evaluation runs on for one SLO window after the fault (at most ``AFTERMATH_MAX_S``) and
    waits for the collectors' scrape that closes it (at most ``settle_s`` more).
    """
    assert started.engine_id is not None
    start, end = started.started_at.timestamp(), until.timestamp()
    with factory() as session:
        row = engines.get_engine(session, started.engine_id)
        name = row.name
        slos: list[SLO] = (
            [parse_slo(spec) for spec in started.hypothesis]
            if started.hypothesis
            else slo_store.engine_slos(session, row.id)
        )
    reach = max((slo.window_s for slo in slos), default=0.0)
    closing = METRICS[-1:]
    with factory() as session:
        collected = chaos_store.engine_samples(
            session, source=name, metrics=closing, start=start - reach - started.settle_s, end=end
        )
    stop_at = end + min(reach, AFTERMATH_MAX_S) if collected else end
    deadline = time.monotonic() + max(0.0, stop_at - time.time()) + started.settle_s
    while collected and time.monotonic() < deadline:
        with factory() as session:
            seen = chaos_store.engine_samples(
                session, source=name, metrics=closing, start=end, end=stop_at + started.settle_s
            )
        if seen and max(s.ts for s in seen) >= stop_at:
            break
        time.sleep(0.25)
    with factory() as session:
        samples = chaos_store.engine_samples(
            session, source=name, metrics=METRICS, start=start - reach, end=stop_at
        )
    out = evaluate(samples, slos, start=start, end=stop_at)
    out["engine"] = name
    out["slo_source"] = "hypothesis" if started.hypothesis else "engine"
    out["fault_s"] = round(end - start, 3)
    out["aftermath_s"] = round(stop_at - end, 3)
    return out
