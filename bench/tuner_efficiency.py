"""Search efficiency: the tuner vs exhaustive grid, random search and hill climbing.

Replay (default): the landscape recorded once from the live engine by
``bench/tuner_landscape.py`` (mean and spread of goodput and p99 per config) is sampled
with noise, so each "trial" costs microseconds and every method can be repeated over many
seeds. Every method measures a config the way the tuner does (the mean of 3 windows drawn
from the recorded spread), treats ``p99 <= SLO * (1 - margin)`` as the constraint, and
picks its winner by the mean of its own measurements among the configs it saw as feasible.
The score of a pick is its *true* (recorded mean) goodput divided by the best true goodput
among truly feasible configs; an infeasible pick scores 0.

Methods at the same budget (default 16 trials = 14 % of the 112-config grid):
- ``tpe`` / ``gp``: the tuner's samplers (``tuner.make_sampler``), constraints through
  ``Trial.set_constraint``, the default config enqueued first, repeats averaged;
- ``random``: Optuna's RandomSampler with the same rules;
- ``hill``: Model Analyzer's quick mode in spirit: start at the default, measure every
  neighbour (one step on an ordered knob, any other precision), move to the best feasible
  improvement, restart from the best unseen config when stuck;
- ``grid``: exhaustive (all configs once), for reference;
- variants (not in the default list): ``tpe+rv`` / ``gp+rv`` / ``rand+rv`` spend the last 3
  trials re-measuring the top 3; ``tpe+nb`` / ``gp+nb`` enqueue the default's neighbours
  first.

    python bench/tuner_efficiency.py [--seeds 20] [--budget 16] [--methods tpe,gp,random,hill,grid]
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import optuna  # noqa: E402

from controlplane.domain import Knob  # noqa: E402
from controlplane.domain import SearchSpace  # noqa: E402
from tuner import TuningSpace  # noqa: E402
from tuner import make_sampler  # noqa: E402

LANDSCAPE = Path(__file__).resolve().parent / "tuner_landscape.json"
DEFAULT = {"max_batch_size": 1, "streams": 1, "precision": "fp32"}
Key = tuple[Any, ...]


class Landscape:
    def __init__(self, path: Path, *, slo_s: float, margin: float, windows: int) -> None:
        data = json.loads(path.read_text())
        self.meta = data["meta"]
        self.points = {self.key(p["config"]): p for p in data["points"]}
        self.limit = slo_s * (1 - margin)
        self.slo_s = slo_s
        self.windows = windows
        grids: dict[str, list[Any]] = {}
        for p in data["points"]:
            for name, value in p["config"].items():
                if value not in grids.setdefault(name, []):
                    grids[name].append(value)
        self.grids = grids
        feasible = [p for p in self.points.values() if p["p99_s"]["mean"] <= self.limit]
        self.best = max(p["goodput"]["mean"] for p in feasible)

    @staticmethod
    def key(config: dict[str, Any]) -> Key:
        return (config["max_batch_size"], config["streams"], config["precision"])

    def measure(self, config: dict[str, Any], rng: random.Random) -> tuple[float, float]:
        """One tuner measurement: the mean of ``windows`` noisy windows."""
        p = self.points[self.key(config)]
        g = statistics.fmean(
            max(0.0, rng.gauss(p["goodput"]["mean"], p["goodput"]["sd"]))
            for _ in range(self.windows)
        )
        q = statistics.fmean(
            max(0.001, rng.gauss(p["p99_s"]["mean"], p["p99_s"]["sd"]))
            for _ in range(self.windows)
        )
        return g, q

    def score(self, config: dict[str, Any] | None) -> float:
        if config is None:
            return 0.0
        p = self.points[self.key(config)]
        return p["goodput"]["mean"] / self.best if p["p99_s"]["mean"] <= self.limit else 0.0


def pick(seen: dict[Key, list[tuple[float, float]]], land: Landscape) -> dict[str, Any] | None:
    """The winner by the mean of its own measurements among configs measured feasible."""
    best, best_value = None, -1.0
    for key, ms in seen.items():
        g = statistics.fmean(m[0] for m in ms)
        q = statistics.fmean(m[1] for m in ms)
        if q <= land.limit and g > best_value:
            best, best_value = key, g
    if best is None:
        return None
    return dict(zip(("max_batch_size", "streams", "precision"), best, strict=True))


def top(
    seen: dict[Key, list[tuple[float, float]]], land: Landscape, k: int
) -> list[dict[str, Any]]:
    """The ``k`` best configs measured feasible so far, by mean goodput."""
    ranked = sorted(
        (
            (statistics.fmean(m[0] for m in ms), key)
            for key, ms in seen.items()
            if statistics.fmean(m[1] for m in ms) <= land.limit
        ),
        reverse=True,
    )
    names = ("max_batch_size", "streams", "precision")
    return [dict(zip(names, key, strict=True)) for _, key in ranked[:k]]


def run_optuna(
    land: Landscape,
    sampler_name: str,
    budget: int,
    seed: int,
    *,
    revalidate: int = 0,
    neighbours_first: bool = False,
) -> dict[str, Any] | None:
    knobs = tuple(Knob(name=n, kind="choice", choices=tuple(v)) for n, v in land.grids.items())
    space = TuningSpace.of(SearchSpace(knobs))
    sampler = make_sampler(sampler_name, space=space, seed=seed, budget=budget)  # type: ignore[arg-type]
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.enqueue_trial(DEFAULT)
    if neighbours_first:
        for key in neighbours(land, land.key(DEFAULT)):
            study.enqueue_trial(dict(zip(land.grids, key, strict=True)))
    rng = random.Random(seed)
    seen: dict[Key, list[tuple[float, float]]] = {}
    for i in range(budget):
        if revalidate and i == budget - revalidate:
            for config in top(seen, land, revalidate):
                study.enqueue_trial(config)
        trial = study.ask(space.distributions())
        key = land.key(trial.params)
        g, q = land.measure(trial.params, rng)
        seen.setdefault(key, []).append((g, q))
        mean_g = statistics.fmean(m[0] for m in seen[key])
        trial.set_constraint("p99", (q - land.limit) / land.slo_s)
        study.tell(trial, mean_g)
    return pick(seen, land)


def neighbours(land: Landscape, key: Key) -> list[Key]:
    names = list(land.grids)
    out = []
    for i, name in enumerate(names):
        values = land.grids[name]
        j = values.index(key[i])
        if name == "precision":
            steps = [v for v in values if v != key[i]]
        else:
            steps = [values[k] for k in (j - 1, j + 1) if 0 <= k < len(values)]
        for v in steps:
            out.append(key[:i] + (v,) + key[i + 1 :])
    return out


def run_hill(land: Landscape, budget: int, seed: int) -> dict[str, Any] | None:
    rng = random.Random(seed)
    seen: dict[Key, list[tuple[float, float]]] = {}
    spent = 0

    def measure(key: Key) -> None:
        nonlocal spent
        config = dict(zip(land.grids, key, strict=True))
        seen.setdefault(key, []).append(land.measure(config, rng))
        spent += 1

    def value(key: Key) -> float:
        g = statistics.fmean(m[0] for m in seen[key])
        q = statistics.fmean(m[1] for m in seen[key])
        return g if q <= land.limit else -1.0

    home = land.key(DEFAULT)
    measure(home)
    while spent < budget:
        candidates = [k for k in neighbours(land, home) if k not in seen]
        rng.shuffle(candidates)
        for k in candidates:
            if spent >= budget:
                break
            measure(k)
        better = max((k for k in neighbours(land, home) if k in seen), key=value, default=None)
        if better is not None and value(better) > value(home):
            home = better
            continue
        unseen = [k for k in land.points if k not in seen]
        if not unseen:
            break
        home = rng.choice(unseen)  # stuck: restart somewhere new
        measure(home)
    return pick(seen, land)


def run_grid(land: Landscape, seed: int) -> dict[str, Any] | None:
    rng = random.Random(seed)
    seen = {key: [land.measure(p["config"], rng)] for key, p in land.points.items()}
    return pick(seen, land)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--landscape", type=Path, default=LANDSCAPE)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--budget", type=int, default=16)
    parser.add_argument("--slo-s", type=float, default=0.3)
    parser.add_argument("--margin", type=float, default=0.1)
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--methods", default="tpe,gp,random,hill,grid")
    args = parser.parse_args()
    optuna.logging.set_verbosity(logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    land = Landscape(args.landscape, slo_s=args.slo_s, margin=args.margin, windows=args.windows)
    runners: dict[str, Callable[[int], dict[str, Any] | None]] = {
        "tpe": lambda s: run_optuna(land, "tpe", args.budget, s),
        "gp": lambda s: run_optuna(land, "gp", args.budget, s),
        "random": lambda s: run_optuna(land, "random", args.budget, s),
        "tpe+rv": lambda s: run_optuna(land, "tpe", args.budget, s, revalidate=3),
        "gp+rv": lambda s: run_optuna(land, "gp", args.budget, s, revalidate=3),
        "rand+rv": lambda s: run_optuna(land, "random", args.budget, s, revalidate=3),
        "gp+nb": lambda s: run_optuna(land, "gp", args.budget, s, neighbours_first=True),
        "tpe+nb": lambda s: run_optuna(land, "tpe", args.budget, s, neighbours_first=True),
        "hill": lambda s: run_hill(land, args.budget, s),
        "grid": lambda s: run_grid(land, s),
    }
    size = len(land.points)
    print(f"landscape: {size} configs, recorded {land.meta}")
    print(f"budget {args.budget} trials = {args.budget / size:.0%} of the grid; "
          f"{args.seeds} seeds; SLO p99 <= {args.slo_s * 1000:g} ms, margin {args.margin:.0%}")  # fmt: skip
    print(
        f"{'method':<8} {'median':>7} {'mean':>6} {'p10':>6} {'min':>6} {'>=0.97':>7} {'s/run':>7}"
    )
    for name in args.methods.split(","):
        scores, took = [], []
        for seed in range(args.seeds):
            started = time.perf_counter()
            scores.append(land.score(runners[name](seed)))
            took.append(time.perf_counter() - started)
        ordered = sorted(scores)
        p10 = ordered[max(0, int(0.1 * len(ordered)) - 1)]
        hit = sum(s >= 0.97 for s in scores) / len(scores)
        print(f"{name:<8} {statistics.median(scores):7.3f} {statistics.fmean(scores):6.3f} "
              f"{p10:6.3f} {min(scores):6.3f} {hit:7.0%} {statistics.fmean(took):7.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
