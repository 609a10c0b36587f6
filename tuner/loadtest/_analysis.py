"""Reading a sweep: its knee, its saturation point, and the regression gate.

The *knee* is the step with the highest throughput that still meets every SLO: the most the
deployment carries within its latency target, which is the capacity figure people quote.
The *saturation point* is where throughput stops rising: the first step that reaches the
sweep's peak throughput (within ``gain``, relative), with a later step to show that more
load bought nothing; past it, more load only buys queueing. Judged against the peak, not
step to step, so one noisy step does not call saturation early.

The gate compares two sweeps at equal offered load. Noise is what the runs measured: each
step's windows give a coefficient of variation, so the standard error of its mean is
``cv / sqrt(windows)``; a change counts when it exceeds ``noise_factor`` combined standard
errors of the two runs, and never less than ``min_tolerance``. A quiet engine gets a tight
gate, a noisy one a loose gate, instead of one fixed percentage that is wrong for both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict
from dataclasses import dataclass
from typing import Any

from tuner.loadtest._step import StepFigures


def knee(steps: Sequence[StepFigures]) -> StepFigures | None:
    within = [s for s in steps if s.meets_slo and s.throughput_rps > 0]
    return max(within, key=lambda s: s.throughput_rps) if within else None


def saturation(steps: Sequence[StepFigures], *, gain: float) -> StepFigures | None:
    """The first step within ``gain`` of the sweep's peak throughput, when a later step
    shows more load bought no more; None while throughput is still rising at the end."""
    if len(steps) < 2:
        return None
    peak = max(s.throughput_rps for s in steps)
    if peak <= 0:
        return None
    first = next(s for s in steps if s.throughput_rps >= peak * (1.0 - gain))
    return None if first is steps[-1] else first


def _se(noise: float, windows: int) -> float:
    return noise / math.sqrt(max(1, windows))


def tolerance(a: StepFigures, b: StepFigures, noise: str, *, factor: float, floor: float) -> float:
    """The relative change at which ``a`` and ``b`` differ by more than their noise."""
    na, nb = getattr(a, noise), getattr(b, noise)
    combined = math.sqrt(_se(na, a.windows) ** 2 + _se(nb, b.windows) ** 2)
    return max(floor, factor * combined)


@dataclass(frozen=True)
class Regression:
    offered: float
    metric: str  # "p99_ms" at equal load, or "knee_rps"
    baseline: float
    now: float
    tolerance: float

    @property
    def change(self) -> float:
        return self.now / self.baseline - 1.0 if self.baseline else math.inf

    def describe(self) -> str:
        if self.metric == "knee_rps":
            return (
                f"knee throughput {self.now:.2f} req/s vs {self.baseline:.2f} "
                f"({self.change:+.1%}, tolerance -{self.tolerance:.1%}) at {self.offered:g}"
            )
        return (
            f"p99 at {self.offered:g}: {self.now:.1f} ms vs {self.baseline:.1f} ms "
            f"({self.change:+.1%}, tolerance +{self.tolerance:.1%})"
        )


@dataclass(frozen=True)
class GateVerdict:
    baseline_id: int
    compared: int
    """Steps found at the same offered load in both runs."""
    regressions: tuple[Regression, ...]

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)

    def as_json(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline_id,
            "compared": self.compared,
            "regressed": self.regressed,
            "regressions": [{**asdict(r), "message": r.describe()} for r in self.regressions],
        }


def compare(
    baseline: Sequence[StepFigures],
    now: Sequence[StepFigures],
    *,
    baseline_id: int,
    noise_factor: float,
    min_tolerance: float,
) -> GateVerdict:
    """Step by step at equal offered load: p99 may not rise, the knee's throughput may not
    fall, each beyond the tolerance the two runs' noise allows."""
    found: list[Regression] = []
    by_load = {round(s.offered, 6): s for s in baseline}
    compared = 0
    for step in now:
        old = by_load.get(round(step.offered, 6))
        if old is None:
            continue
        compared += 1
        if old.p99_ms is None or step.p99_ms is None:
            continue
        tol = tolerance(old, step, "p99_noise", factor=noise_factor, floor=min_tolerance)
        if step.p99_ms > old.p99_ms * (1.0 + tol):
            found.append(Regression(step.offered, "p99_ms", old.p99_ms, step.p99_ms, tol))
    old_knee, new_knee = knee(baseline), knee(now)
    if old_knee is not None:
        if new_knee is None:
            found.append(
                Regression(old_knee.offered, "knee_rps", old_knee.throughput_rps, 0.0, 0.0)
            )
        else:
            tol = tolerance(
                old_knee, new_knee, "throughput_noise", factor=noise_factor, floor=min_tolerance
            )
            if new_knee.throughput_rps < old_knee.throughput_rps * (1.0 - tol):
                found.append(
                    Regression(
                        new_knee.offered,
                        "knee_rps",
                        old_knee.throughput_rps,
                        new_knee.throughput_rps,
                        tol,
                    )
                )
    return GateVerdict(baseline_id=baseline_id, compared=compared, regressions=tuple(found))
