"""What a tuning run was asked to do, as stored on its row, and starting one safely.

Everything that can be refused is refused here, before a row exists: the engine must
exist, have SLOs for the guard to judge trials by, not be in the middle of a rollout or
another tuning run, and offer the knobs named. Starting never touches the engine's config.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from controlplane.domain import SLO
from controlplane.domain import ConflictError
from controlplane.domain import EngineConfig
from controlplane.domain import ValidationError
from controlplane.domain import parse_slo
from controlplane.domain.quality import is_quality_spec
from controlplane.domain.quality import parse_quality
from controlplane.engines.base import EngineAdapter
from controlplane.guard.quality import check_supported
from controlplane.schemas.tuning import LoadProfile
from controlplane.schemas.tuning import Objective
from controlplane.schemas.tuning import SamplerName
from controlplane.schemas.tuning import TuningCreate
from controlplane.schemas.tuning import parse_load
from controlplane.settings import TunerSettings
from controlplane.store import engines
from controlplane.store import quality as quality_store
from controlplane.store import rollouts
from controlplane.store import slos as slo_store
from controlplane.store import tuning
from controlplane.store.base import utcnow
from controlplane.store.models import EngineRow
from controlplane.store.models import TuningRunRow
from tuner._space import TuningSpace


@dataclass(frozen=True)
class TuningSpec:
    """The resolved request: stored as the run's ``spec`` JSON, read back on resume."""

    engine: str
    objective: Objective
    slos: tuple[str, ...]
    load: str
    trials: int
    knobs: tuple[str, ...]
    sampler: SamplerName
    seed: int
    margin: float
    repeats: int
    apply_best: bool
    default_config: dict[str, Any]
    quality: str | None = None
    """A quality spec every trial's guard probes with (a constraint: ``quality``)."""

    def slo_objects(self) -> tuple[SLO, ...]:
        return tuple(parse_slo(s) for s in self.slos)

    def load_profile(self) -> LoadProfile:
        return parse_load(self.load)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["slos"] = list(self.slos)
        data["knobs"] = list(self.knobs)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TuningSpec:
        fields = {**data, "slos": tuple(data["slos"]), "knobs": tuple(data["knobs"])}
        return cls(**fields)


def check_request(
    session: Session, *, engine: EngineRow, request: TuningCreate, adapter: EngineAdapter
) -> tuple[list[str], TuningSpace]:
    """What a request needs of the engine, whatever it is busy with now: SLOs for the guard
    to judge trials by, and the knobs named. Returns the guard's SLOs and the run's space.

    Raises:
        ValidationError: no SLO, or a knob the engine does not offer.
        EngineUnreachableError: the engine's search space could not be read.
    """
    guard_slos = [s.spec() for s in slo_store.engine_slos(session, engine.id)]
    if not guard_slos:
        raise ValidationError(
            f"engine {engine.name!r} has no SLO for the guard to judge trials by: add one "
            f"with `cplane slo set {engine.name} 'p99_ms<=500'`",
            field="slo",
        )
    return guard_slos, TuningSpace.of(adapter.search_space(), knobs=request.knobs)


def start_run(
    session: Session,
    *,
    engine_ref: str | int,
    request: TuningCreate,
    adapter: EngineAdapter,
    policy: TunerSettings,
    actor: str,
) -> TuningRunRow:
    """Validate a tuning request against the engine and record the run (``pending``).

    Raises:
        NotFoundError: no such engine.
        ValidationError: no SLO to tune against or to guard trials with; unknown knobs.
        ConflictError: the engine has a rollout in flight or is being tuned already.
        EngineUnreachableError: the engine's search space or config could not be read.
    """
    engine = engines.get_engine(session, engine_ref)
    active = rollouts.active_rollout(session, engine.id)
    if active is not None:
        raise ConflictError(
            f"engine {engine.name!r} is busy: rollout {active.id} is {active.state}; "
            "tune it once the rollout has finished"
        )
    busy = tuning.active_run(session, engine.id)
    if busy is not None:
        raise ConflictError(
            f"engine {engine.name!r} is already being tuned by run {busy.id} ({busy.state})"
        )
    guard_slos, space = check_request(session, engine=engine, request=request, adapter=adapter)
    quality = _quality(session, engine, adapter, request.slo)
    latency = [s for s in request.slo if not is_quality_spec(s)]
    default: EngineConfig = adapter.current_config()
    spec = TuningSpec(
        engine=engine.name,
        objective=request.objective,
        slos=tuple(latency or guard_slos),
        load=request.load,
        trials=request.trials,
        knobs=space.names,
        sampler=request.sampler if request.sampler != "auto" else policy.sampler,
        seed=request.seed if request.seed is not None else secrets.randbelow(2**31),
        margin=request.margin if request.margin is not None else policy.margin,
        repeats=request.repeats or policy.repeats,
        apply_best=request.apply_best,
        default_config=dict(default),
        quality=quality,
    )
    stamp = utcnow().strftime("%Y%m%d-%H%M%S")
    study_name = f"{engine.name}-{stamp}-{secrets.token_hex(3)}"
    return tuning.create_run(
        session,
        engine_id=engine.id,
        study_name=study_name,
        objective=spec.objective,
        spec=spec.to_json(),
        actor=actor,
    )


def _quality(
    session: Session, engine: EngineRow, adapter: EngineAdapter, requested: list[str]
) -> str | None:
    """The run's quality spec (at most one), refused when it cannot be judged."""
    specs = [s for s in requested if is_quality_spec(s)]
    if len(specs) > 1:
        raise ValidationError("a tuning run takes at most one quality spec", field="slo")
    if not specs:
        return None
    spec = parse_quality(specs[0])
    check_supported(spec, adapter.quality_measures, engine=engine.name, kind=engine.kind)
    quality_store.require_reference(session, engine)
    return spec.spec()
