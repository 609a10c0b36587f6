"""Recorded experiments: validate, record and inject in one step (nothing applied and
nothing recorded when any part fails), then hold, remove and record the outcome with the
guard's reaction read from the store. Shared by the CLI and the API.

Not imported by the package: the injector's helper processes (the delaying proxy, the
watchdog) start as ``python -m controlplane.chaos...`` and must not pay for the store's
imports before they are ready."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controlplane.chaos._experiment import hold
from controlplane.chaos._inject import Injection
from controlplane.chaos._inject import Injector
from controlplane.chaos._inject import sweep_all
from controlplane.chaos._spec import parse_fault
from controlplane.chaos._spec import parse_target
from controlplane.domain import ValidationError
from controlplane.domain import parse_slo
from controlplane.schemas.chaos import ChaosExperimentRead
from controlplane.schemas.chaos import ChaosRunCreate
from controlplane.settings import Settings
from controlplane.store import chaos as chaos_store
from controlplane.store import engines
from controlplane.store.base import utcnow
from controlplane.store.database import SessionFactory
from controlplane.store.database import unit_of_work


@dataclass
class Started:
    experiment_id: int
    injection: Injection
    duration_s: float
    engine_id: int | None
    expected: str
    started_at: datetime


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
                row.id, injection, body.duration_s, engine_id, body.expected, row.started_at
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
    """Hold the fault, remove it, and record counters, cleanup and the guard's reaction."""
    error = None
    result: dict[str, Any] = {}
    try:
        outcome = hold(started.injection, started.duration_s, stop=stop)
        result = outcome.as_dict()
        state = "aborted" if outcome.aborted else "completed"
    except Exception as exc:  # noqa: BLE001 - recorded on the experiment; cleanup already ran
        started.injection.remove()
        state, error = "failed", str(exc)
    with unit_of_work(factory) as session:
        if started.engine_id is not None:
            guard = chaos_store.guard_reaction(
                session, engine_id=started.engine_id, since=started.started_at, until=utcnow()
            )
            result["guard"] = guard
            if started.expected != "any":
                result["expectation_met"] = guard["reaction"] == started.expected
        row = chaos_store.finish_experiment(
            session, started.experiment_id, state=state, result=result, actor=actor, error=error
        )
        return ChaosExperimentRead.model_validate(row)
