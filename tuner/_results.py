"""Turning a study into a result: the winner by mean of repeats, confidence intervals, the
JSON every trial is recorded as. Kept apart from the run loop, which only orchestrates."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from scipy import stats

from controlplane.domain import SLO
from controlplane.domain import RolloutState
from tuner._measure import Measurement
from tuner._space import config_key
from tuner._specs import TuningSpec


@dataclass(frozen=True)
class TrialRecord:
    """One finished trial, as progress output and the run's result show it."""

    number: int
    kind: str  # baseline | trial | repeat
    params: dict[str, Any]
    outcome: str  # feasible | infeasible | breach | failed
    values: tuple[float, ...] | None
    goodput: float | None = None
    throughput: float | None = None
    p99_ms: float | None = None
    stable: bool | None = None
    rollout_id: int | None = None
    error: str | None = None
    duration_s: float = 0.0


def best_config(study: optuna.Study, spec: TuningSpec) -> dict[str, Any] | None:
    """The best feasible config by the mean of all its measurements (not one lucky trial).

    Feasibility is judged on the mean constraint values of a config's measurements, so a
    config that passed once and failed its repeat is judged on both; a config whose rollout
    was ever rolled back for a breach is out. Multi-objective: the feasible Pareto front,
    and its member with the highest throughput.
    """
    groups: dict[Any, dict[str, Any]] = {}
    breached: set[Any] = set()
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        key = config_key(t.params)
        if "raw_values" not in t.user_attrs:
            breached.add(key)
            continue
        g = groups.setdefault(key, {"params": dict(t.params), "raw": [], "constraints": []})
        g["raw"].append(t.user_attrs["raw_values"])
        g["constraints"].append(t.constraints)
    ranked = []
    for key, g in groups.items():
        names = {name for c in g["constraints"] for name in c}
        mean_constraints = {
            name: statistics.fmean(c.get(name, 0.0) for c in g["constraints"]) for name in names
        }
        if key in breached or any(v > 0 for v in mean_constraints.values()):
            continue
        raw = g["raw"]
        ranked.append(
            {
                "params": g["params"],
                "values": [statistics.fmean(v[i] for v in raw) for i in range(len(raw[0]))],
                "measurements": len(raw),
                "constraints": {k: round(v, 4) for k, v in mean_constraints.items()},
            }
        )
    if not ranked:
        return None
    if spec.objective == "p99":
        best = min(ranked, key=lambda g: g["values"][0])
    else:
        best = max(ranked, key=lambda g: g["values"][0])
    if spec.objective == "pareto":
        front = [g for g in ranked if not any(dominates(o["values"], g["values"]) for o in ranked)]
        best = {**best, "pareto_front": front}
    return best


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    # (throughput up, p99 down)
    return a[0] >= b[0] and a[1] <= b[1] and (a[0] > b[0] or a[1] < b[1])


def applied_json(
    rollout_id: int | None, state: RolloutState | None, verdict: dict[str, Any]
) -> dict[str, Any]:
    return {
        "rollout_id": rollout_id,
        "state": state.value if state else None,
        "awaiting_approval": verdict.get("outcome") == "awaiting_approval",
        "summary": verdict.get("summary"),
    }


def mean_ci(values: Sequence[float], level: float = 0.95) -> dict[str, Any]:
    mean = statistics.fmean(values)
    if len(values) < 2:
        return {"mean": mean, "n": len(values), "ci": None, "values": list(values)}
    sem = statistics.stdev(values) / math.sqrt(len(values))
    half = float(stats.t.ppf((1 + level) / 2, len(values) - 1)) * sem
    return {
        "mean": mean,
        "n": len(values),
        "ci": [mean - half, mean + half],
        "values": list(values),
    }


def significance(best: dict[str, Any], default: dict[str, Any]) -> dict[str, Any]:
    """Is the best config's re-measured objective really different from the default's?

    Welch's t-test on the re-measurements (unequal variances: the two configs need not be
    equally noisy) and whether the two 95 % confidence intervals overlap; overlapping CIs
    are said aloud because that is how people read the numbers beside each other.
    """
    a, b = list(best.get("values") or []), list(default.get("values") or [])
    ci_a, ci_b = best.get("ci"), default.get("ci")
    overlap = None if not (ci_a and ci_b) else ci_a[0] <= ci_b[1] and ci_b[0] <= ci_a[1]
    if len(a) < 2 or len(b) < 2:
        return {"p_value": None, "significant": None, "ci_overlap": overlap,
                "note": "too few re-measurements to test"}  # fmt: skip
    if statistics.pvariance(a) == 0 and statistics.pvariance(b) == 0:
        p_value = 0.0 if statistics.fmean(a) != statistics.fmean(b) else 1.0
    else:
        p_value = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    return {"p_value": p_value, "significant": p_value < 0.05, "ci_overlap": overlap}


def worst_values(objective: str) -> tuple[float, ...]:
    return {
        "goodput": (0.0,),
        "p99": (3_600_000.0,),
        "pareto": (0.0, 3_600_000.0),
        "capacity": (0.0,),
    }[objective]


def slo_name(spec: str, slos: Sequence[SLO]) -> str | None:
    return next((s.name for s in slos if s.spec() == spec), None)


def short_measurement(m: Measurement) -> dict[str, Any]:
    data = m.as_json()
    data["windows"] = len(m.windows)
    return data


def to_ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def describe(r: TrialRecord) -> str:
    head = f"trial {r.number} ({r.kind}) {r.params}: {r.outcome}"
    if r.goodput is not None:
        head += f", goodput {r.goodput:.1f}/s, p99 {r.p99_ms} ms"
    return head + (f" - {r.error}" if r.error else "")


def record_json(r: TrialRecord) -> dict[str, Any]:
    return {
        "number": r.number,
        "kind": r.kind,
        "params": r.params,
        "outcome": r.outcome,
        "values": list(r.values) if r.values is not None else None,
        "goodput": r.goodput,
        "throughput": r.throughput,
        "p99_ms": r.p99_ms,
        "stable": r.stable,
        "rollout_id": r.rollout_id,
        "error": r.error,
        "duration_s": round(r.duration_s, 2),
    }
