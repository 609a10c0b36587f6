"""What a measurement is worth: objective values, and one constraint per SLO.

SLOs are constraints, never penalties folded into the score: a penalty makes the sampler
learn a cliff it cannot model, while Optuna's constrained samplers (c-TPE, GP with
constrained log-EI) model feasibility separately. Each constraint is the observed value's
distance from the threshold *tightened by the safety margin*, relative to the threshold:
``(observed - threshold * (1 - margin)) / threshold``, feasible when <= 0 (Optuna's
convention). The margin keeps the tuner off the edge where noise alone would flip a config
between feasible and not (Akamas' live default, safetyFactor 0.6, is the same 10 %).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from controlplane.domain import SLO
from controlplane.schemas.tuning import Objective
from tuner._measure import Measurement

# A latency nobody could accept: what an SLO is judged with when no request finished.
NO_DATA_S = 3600.0


@dataclass(frozen=True)
class Score:
    values: tuple[float, ...]
    constraints: dict[str, float]

    @property
    def feasible(self) -> bool:
        return all(v <= 0 for v in self.constraints.values())


Direction = Literal["minimize", "maximize"]


def directions(objective: Objective) -> list[Direction]:
    table: dict[str, list[Direction]] = {
        "goodput": ["maximize"],
        "p99": ["minimize"],
        "pareto": ["maximize", "minimize"],
        "capacity": ["maximize"],
    }
    return table[objective]


def objective_names(objective: Objective) -> list[str]:
    return {
        "goodput": ["goodput_rps"],
        "p99": ["p99_ms"],
        "pareto": ["throughput_rps", "p99_ms"],
        "capacity": ["capacity_rps"],
    }[objective]


def constraints(m: Measurement, slos: Sequence[SLO], *, margin: float) -> dict[str, float]:
    found: dict[str, float] = {}
    for slo in slos:
        limit = slo.threshold * (1.0 - margin)
        if slo.kind == "error_rate":
            # The threshold may be 0 (no errors at all): then the raw rate is the distance.
            scale = slo.threshold if slo.threshold > 0 else 1.0
            found[slo.name] = (m.error_rate - limit) / scale
            continue
        observed = m.quantile_s(slo.name)
        found[slo.name] = ((NO_DATA_S if observed is None else observed) - limit) / slo.threshold
    return found


def score(m: Measurement, slos: Sequence[SLO], *, objective: Objective, margin: float) -> Score:
    p99_ms = (m.p99_s if m.p99_s is not None else NO_DATA_S) * 1000.0
    values: tuple[float, ...]
    if objective == "goodput":
        values = (m.goodput,)
    elif objective == "p99":
        values = (p99_ms,)
    elif objective == "capacity":
        values = (m.capacity_rps or 0.0,)
    else:
        values = (m.throughput, p99_ms)
    return Score(values=values, constraints=constraints(m, slos, margin=margin))


def better(a: Sequence[float], b: Sequence[float], objective: Objective) -> bool:
    """Single-objective comparison of two values (the first value for pareto: throughput)."""
    if objective == "p99":
        return a[0] < b[0]
    return a[0] > b[0]
