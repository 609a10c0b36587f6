"""Choosing the winner: by the mean of every measurement of a config, constraints included;
a config ever rolled back for a breach is out; pareto runs get the feasible front."""

from __future__ import annotations

from typing import Any

import optuna

from tuner._results import best_config
from tuner._specs import TuningSpec

DIST: dict[str, optuna.distributions.BaseDistribution] = {
    "b": optuna.distributions.CategoricalDistribution((1, 2, 4, 8))
}


def _spec(objective: Any) -> TuningSpec:
    return TuningSpec(
        engine="e", objective=objective, slos=("p99_ms<=300",), load="rate=1", trials=5,
        knobs=("b",), sampler="tpe", seed=0, margin=0.1, repeats=1, apply_best=True,
        default_config={"b": 1},
    )  # fmt: skip


def _tell(study: optuna.Study, b: int, values: list[float], p99: float | None) -> None:
    trial = study.ask(DIST)
    assert trial.params["b"] == b
    if p99 is None:  # a breach: no measurement kept, only a violated constraint
        trial.set_constraint("p99", 0.5)
    else:
        trial.set_user_attr("raw_values", values)
        trial.set_constraint("p99", p99)
    study.tell(trial, values)


def _study(directions: list[Any], rows: list[tuple[int, list[float], float | None]]) -> Any:
    study = optuna.create_study(directions=directions)
    for b, _, _ in rows:
        study.enqueue_trial({"b": b})
    for b, values, p99 in rows:
        _tell(study, b, values, p99)
    return study


def test_the_winner_is_judged_on_all_its_measurements() -> None:
    study = _study(
        ["maximize"],
        [
            (1, [10.0], -0.1),
            (2, [90.0], -0.1),  # lucky once ...
            (2, [30.0], 0.4),  # ... infeasible on the repeat: mean constraint 0.15 > 0
            (4, [50.0], -0.2),
            (8, [99.0], None),  # rolled back for a breach
        ],
    )
    best = best_config(study, _spec("goodput"))
    assert best is not None
    assert best["params"] == {"b": 4} and best["measurements"] == 1


def test_p99_objective_minimises_and_nothing_feasible_is_none() -> None:
    study = _study(["minimize"], [(1, [250.0], -0.05), (2, [120.0], -0.5)])
    best = best_config(study, _spec("p99"))
    assert best is not None and best["params"] == {"b": 2}
    none = _study(["maximize"], [(1, [10.0], 0.2)])
    assert best_config(none, _spec("goodput")) is None


def test_pareto_runs_get_the_feasible_front() -> None:
    study = _study(
        ["maximize", "minimize"],
        [(1, [10.0, 100.0], -0.5), (2, [20.0, 150.0], -0.3), (4, [15.0, 200.0], -0.1),
         (8, [40.0, 90.0], 0.2)],
    )  # fmt: skip
    best = best_config(study, _spec("pareto"))
    assert best is not None
    assert best["params"] == {"b": 2}  # the highest throughput on the front
    assert sorted(g["params"]["b"] for g in best["pareto_front"]) == [1, 2]
