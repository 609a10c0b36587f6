"""The tuner's structured sampler on a synthetic engine-like landscape (ordered batch and
streams, categorical precision, a latency cliff), driven through Optuna's ask / tell the
way the tuner drives it: raw values in ``raw_values``, SLOs via ``Trial.set_constraint``."""

from __future__ import annotations

import random
import statistics
from typing import Any

import optuna
import pytest

from controlplane.domain import Knob
from controlplane.domain import SearchSpace
from tuner import StructuredSampler
from tuner import TuningSpace
from tuner import make_sampler
from tuner._space import config_key

BATCH = (1, 2, 4, 8, 16, 32, 64)
STREAMS = (1, 2, 3, 4)
PRECISION = ("fp32", "bf16", "fp16", "int8")
SPEED = {"fp32": 1.0, "bf16": 0.7, "fp16": 0.8, "int8": 0.6}
LIMIT_S = 0.45
DEFAULT = {"max_batch_size": 1, "streams": 1, "precision": "fp32"}

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _space() -> TuningSpace:
    knobs = (
        Knob(name="max_batch_size", kind="choice", choices=BATCH),
        Knob(name="streams", kind="choice", choices=STREAMS),
        Knob(name="precision", kind="choice", choices=PRECISION),
    )
    return TuningSpace.of(SearchSpace(knobs))


def _truth(p: dict[str, Any]) -> tuple[float, float]:
    """Goodput grows with batch and streams, latency too: the best feasible config sits
    just below the cliff, an isolated point no corner of the grid reveals."""
    b, s, speed = p["max_batch_size"], p["streams"], SPEED[p["precision"]]
    return 100 * speed * b**0.7 * s**0.3, 0.05 * b * s / speed


def _best() -> float:
    return max(g for g, q in map(_truth, _space().configs()) if q <= LIMIT_S)


def _run(
    sampler: optuna.samplers.BaseSampler, seed: int, budget: int = 16
) -> tuple[list[dict[str, Any]], float]:
    """A replayed tuning run: the trials' params in order, and the pick's true goodput over
    the best feasible (0 for an infeasible pick)."""
    rng = random.Random(seed)
    space = _space()
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.enqueue_trial(DEFAULT)
    seen: dict[Any, list[tuple[float, float]]] = {}
    order: list[dict[str, Any]] = []
    for _ in range(budget):
        trial = study.ask(space.distributions())
        g, q = _truth(trial.params)
        g, q = g * rng.gauss(1, 0.05), q * rng.gauss(1, 0.05)
        key = config_key(trial.params)
        seen.setdefault(key, []).append((g, q))
        order.append(dict(trial.params))
        trial.set_user_attr("raw_values", [g])
        trial.set_constraint("p99", (q - LIMIT_S) / LIMIT_S)
        study.tell(trial, statistics.fmean(m[0] for m in seen[key]))
    feasible = {
        k: statistics.fmean(m[0] for m in ms)
        for k, ms in seen.items()
        if statistics.fmean(m[1] for m in ms) <= LIMIT_S
    }
    pick = max(feasible, key=lambda k: feasible[k])
    params = next(p for p in order if config_key(p) == pick)
    g, q = _truth(params)
    return order, g / _best() if q <= LIMIT_S else 0.0


def test_encoding_orders_numeric_knobs_and_one_hots_categoricals() -> None:
    sampler = StructuredSampler(_space(), budget=16)
    enc = sampler.encoding
    at = {**DEFAULT}
    assert enc.encode(at)[0] == 0.0
    assert enc.encode({**at, "max_batch_size": 8})[0] == pytest.approx(0.5)  # log-spaced
    assert enc.encode({**at, "max_batch_size": 64})[0] == 1.0
    near = enc.neighbours({**at, "max_batch_size": 8})
    batches = sorted(n["max_batch_size"] for n in near if n["max_batch_size"] != 8)
    assert batches == [4, 16]
    assert sorted(n["precision"] for n in near if n["precision"] != "fp32") == [
        "bf16",
        "fp16",
        "int8",
    ]
    assert len(near) == 2 + 1 + 3  # streams 1 has one neighbour, 2


def test_finds_the_best_below_the_cliff_and_beats_random_search() -> None:
    tuned = [_run(StructuredSampler(_space(), budget=16, seed=s), s)[1] for s in range(10)]
    rand = [_run(optuna.samplers.RandomSampler(seed=s), s)[1] for s in range(10)]
    assert statistics.median(tuned) >= 0.97, tuned
    assert statistics.fmean(tuned) > statistics.fmean(rand) + 0.1, (tuned, rand)


def test_new_configs_until_the_confirmation_phase_then_repeats_of_the_top() -> None:
    sampler = StructuredSampler(_space(), budget=16, seed=3, n_confirm=3)
    order, _ = _run(sampler, 3)
    explore = [config_key(p) for p in order[: 16 - sampler.n_confirm]]
    assert len(set(explore)) == len(explore), "a repeat before the confirmation phase"
    for params in order[16 - sampler.n_confirm :]:
        assert config_key(params) in explore, "confirmation measured a new config"


def _add(study: optuna.Study, params: dict[str, Any], value: float, constraint: float) -> None:
    dists = _space().distributions()
    study.add_trial(
        optuna.trial.create_trial(
            params=params,
            distributions=dists,
            value=value,
            user_attrs={"raw_values": [value]},
            system_attrs={"constraints": [constraint]},
        )
    )


def test_feasibility_is_judged_on_the_mean_of_all_measurements() -> None:
    """A config that passed once and failed its repeat (mean constraint > 0) is not
    re-measured as a winner, however high its goodput; once its mean is feasible it is."""
    sampler = StructuredSampler(_space(), budget=4, n_initial=0, n_confirm=4)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    lucky = {"max_batch_size": 16, "streams": 1, "precision": "fp32"}
    solid = {"max_batch_size": 8, "streams": 1, "precision": "fp32"}
    _add(study, solid, 250.0, -0.2)
    _add(study, solid, 250.0, -0.2)
    _add(study, lucky, 300.0, -0.1)
    _add(study, lucky, 280.0, 0.3)
    assert sampler.suggest(study.get_trials(), study.direction) == solid
    _add(study, solid, 250.0, -0.2)
    _add(study, lucky, 290.0, -0.3)  # now feasible on the mean of three
    assert sampler.suggest(study.get_trials(), study.direction) == lucky


def test_turns_local_around_the_incumbent_when_the_search_stalls() -> None:
    """With no new incumbent for ``patience`` trials the next config is a neighbour of the
    incumbent, even where the model's acquisition prefers a far corner."""
    best = {"max_batch_size": 4, "streams": 2, "precision": "fp16"}

    def prefers_far(sampler: StructuredSampler) -> None:
        origin = sampler.encoding.encode(best)

        def acquisition(seen: Any, unseen: list[dict[str, Any]]) -> dict[Any, float]:
            enc = sampler.encoding.encode
            return {config_key(c): float(((enc(c) - origin) ** 2).sum()) for c in unseen}

        sampler._acquisition = acquisition  # type: ignore[method-assign]

    for patience, expect_local in ((2, True), (99, False)):
        sampler = StructuredSampler(
            _space(), budget=30, n_initial=1, n_confirm=0, patience=patience
        )
        prefers_far(sampler)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        _add(study, DEFAULT, 100.0, -0.5)
        _add(study, best, 400.0, -0.1)
        _add(study, {"max_batch_size": 64, "streams": 1, "precision": "fp32"}, 10.0, 2.0)
        _add(study, {"max_batch_size": 1, "streams": 4, "precision": "int8"}, 50.0, -0.2)
        nxt = sampler.suggest(study.get_trials(), study.direction)
        local = {config_key(n) for n in sampler.encoding.neighbours(best)}
        assert (config_key(nxt) in local) is expect_local, (patience, nxt)


def test_auto_is_the_structured_sampler_for_one_objective_and_tpe_for_pareto() -> None:
    space = _space()
    assert isinstance(make_sampler("auto", space=space, seed=1, budget=16), StructuredSampler)
    pareto = make_sampler("auto", space=space, seed=1, budget=16, objective="pareto")
    assert isinstance(pareto, optuna.samplers.TPESampler)


def test_initial_design_spreads_out_and_can_stay_off_the_ends() -> None:
    """From the baseline the design goes to the far end of the grid; with ``interior`` it
    stays off the ends of the ordered knobs (batch 1 and 64, streams 1 and 4)."""
    for interior in (False, True):
        sampler = StructuredSampler(_space(), budget=16, seed=0, n_initial=3, interior=interior)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        _add(study, DEFAULT, 100.0, -0.5)
        first = sampler.suggest(study.get_trials(), study.direction)
        ends = first["max_batch_size"] in (1, 64) or first["streams"] in (1, 4)
        if interior:
            assert not ends, first
        else:
            assert (first["max_batch_size"], first["streams"]) == (64, 4)
            assert first["precision"] != "fp32"
