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
- ``tuner``: the tuner's default (``auto``): :class:`tuner.StructuredSampler`;
- ``tpe`` / ``gp``: Optuna's samplers as the tuner builds them (``tuner.make_sampler``), constraints through
  ``Trial.set_constraint``, the default config enqueued first, repeats averaged;
- ``random``: Optuna's RandomSampler with the same rules;
- ``hill``: Model Analyzer's quick mode in spirit: start at the default, measure every
  neighbour (one step on an ordered knob, any other precision), move to the best feasible
  improvement, restart from the best unseen config when stuck;
- ``grid``: exhaustive (all configs once), for reference;
- variants (not in the default list): ``tpe+rv`` / ``gp+rv`` / ``rand+rv`` spend the last 3
  trials re-measuring the top 3; ``tpe+nb`` / ``gp+nb`` enqueue the default's neighbours
  first.

    python bench/tuner_efficiency.py [--seeds 20] [--budget 16] [--methods "tuner gp random hill grid"]
    python bench/tuner_efficiency.py --live --seeds 5 --methods "tuner random hill" \
        --record bench/tuner_landscape_live.json --json bench/tuner_efficiency_live.json

``--live`` is the headline, all on one freshly started reference engine in one run:
1. the exhaustive grid, measured live (``--record`` keeps it as a landscape file);
2. every method and seed, every trial measured live (seeds one after another, the
   methods interleaved within a seed, so drift falls on all of them alike);
3. a **playoff**: the grid's top 3 and every distinct pick re-measured side by side, in
   ``--rounds`` rounds of a shuffled order. Rounds 1, 3, 5, ... choose the references,
   rounds 2, 4, 6, ... score every pick against them, so a pick is scored by a ratio taken
   under the same conditions, and a reference's own lucky draw (the winner's curse of a max
   over noisy means) does not deflate the scores. Two references: the grid-best (the best
   of the grid's top 3) and the best config anyone found. A pick infeasible in the scoring
   rounds scores 0. ``--judge FILE`` prints the playoff of a ``--json`` file again.
The picks are also scored against the grid recorded in step 1 (the replay's rule), for
comparison. ``--rescore FILE`` scores the picks of a ``--json`` file against other
recordings (``--landscape`` repeated pools them). ``tuner:patience=99,n_confirm=0`` style
methods run the tuner's sampler with other phase sizes (ablations).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import optuna  # noqa: E402
from engine_common import engine_process  # noqa: E402
from tuner_landscape import Probe  # noqa: E402

from controlplane.domain import Knob  # noqa: E402
from controlplane.domain import SearchSpace  # noqa: E402
from tuner import StructuredSampler  # noqa: E402
from tuner import TuningSpace  # noqa: E402
from tuner import make_sampler  # noqa: E402

LANDSCAPE = Path(__file__).resolve().parent / "tuner_landscape.json"
DEFAULT = {"max_batch_size": 1, "streams": 1, "precision": "fp32"}
NAMES = ("max_batch_size", "streams", "precision")
Key = tuple[Any, ...]


class LiveLandscape:
    """The same interface, but every measurement runs on the live reference engine (put the
    config, warm up and discard, then the recording's windows); ``score`` still compares
    with the grid recorded in the same run."""

    def __init__(self, land: Landscape, probe: Probe) -> None:
        self.land, self.probe = land, probe
        self.log: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.land, name)

    def measure(self, config: dict[str, Any], rng: random.Random) -> tuple[float, float]:
        point = self.probe.point(config)
        g, q = point["goodput"]["mean"], point["p99_s"]["mean"]
        self.log.append({"config": config, "goodput": round(g, 1), "p99_ms": round(q * 1000)})
        return g, q


class Landscape:
    """The recorded grid. Several recordings of the same grid are pooled per config (mean of
    the means; spread from the within- and between-recording variance), which makes the
    reference that picks are scored against less dependent on one recording's noise."""

    def __init__(
        self, recordings: list[dict[str, Any]], *, slo_s: float, margin: float, windows: int
    ) -> None:
        data = recordings[0]
        self.meta = data["meta"] if len(recordings) == 1 else {
            **data["meta"], "pooled": [r["meta"] for r in recordings]
        }  # fmt: skip
        self.points = {self.key(p["config"]): p for p in data["points"]}
        if len(recordings) > 1:
            self.points = pool(recordings)
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

    @classmethod
    def load(cls, paths: list[Path], **options: Any) -> Landscape:
        return cls([json.loads(path.read_text()) for path in paths], **options)

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


def pool(recordings: list[dict[str, Any]]) -> dict[Key, dict[str, Any]]:
    by_key: dict[Key, list[dict[str, Any]]] = {}
    for r in recordings:
        for p in r["points"]:
            by_key.setdefault(Landscape.key(p["config"]), []).append(p)
    out = {}
    for key, ps in by_key.items():
        if len(ps) != len(recordings):
            raise SystemExit(f"config {key} is missing from a recording")
        point: dict[str, Any] = {"config": ps[0]["config"]}
        for field in ("goodput", "throughput", "p99_s"):
            means = [p[field]["mean"] for p in ps]
            within = statistics.fmean(p[field]["sd"] ** 2 for p in ps)
            between = statistics.pvariance(means)
            point[field] = {"mean": statistics.fmean(means), "sd": (within + between) ** 0.5}
        out[key] = point
    return out


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
    options: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    knobs = tuple(Knob(name=n, kind="choice", choices=tuple(v)) for n, v in land.grids.items())
    space = TuningSpace.of(SearchSpace(knobs))
    sampler: optuna.samplers.BaseSampler
    if options is not None:
        sampler = StructuredSampler(space, budget=budget, seed=seed, **options)
    else:
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
        trial.set_user_attr("raw_values", [g])
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


def ablation(land: Landscape, name: str, budget: int) -> Callable[[int], dict[str, Any] | None]:
    """``tuner:patience=99,n_confirm=0``: the tuner's sampler with other phase sizes."""
    if not name.startswith("tuner:"):
        raise SystemExit(f"unknown method {name!r}")
    options = {k: int(v) for k, v in (kv.split("=") for kv in name[6:].split(",") if kv)}
    return lambda s: run_optuna(land, "auto", budget, s, options=options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--landscape", type=Path, action="append",
                        help="a recorded grid (repeat to pool several recordings)")  # fmt: skip
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--budget", type=int, default=16)
    parser.add_argument("--slo-s", type=float, default=0.3)
    parser.add_argument("--margin", type=float, default=0.1)
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--methods", default="tuner tpe gp random hill grid")
    parser.add_argument("--live", action="store_true",
                        help="record the grid, run the methods and a playoff on a live engine")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=4,
                        help="playoff rounds (live; half choose the reference, half score)")  # fmt: skip
    parser.add_argument("--record", type=Path, default=None,
                        help="live: also write the grid recorded in this run here")  # fmt: skip
    parser.add_argument("--json", type=Path, default=None,
                        help="also write the scores (and, live, every run's pick) here")  # fmt: skip
    parser.add_argument("--rescore", type=Path, default=None,
                        help="score the picks of an earlier --live --json file instead")  # fmt: skip
    parser.add_argument("--judge", type=Path, default=None,
                        help="judge the playoff of an earlier --live --json file again")  # fmt: skip
    args = parser.parse_args()
    if args.rounds < 2:
        parser.error("--rounds must be at least 2")
    options = {"slo_s": args.slo_s, "margin": args.margin, "windows": args.windows}
    if args.judge is not None:
        judge_file(args.judge, args.slo_s * (1 - args.margin))
        return
    if args.rescore is not None:
        rescore(Landscape.load(args.landscape or [LANDSCAPE], **options), args.rescore)
        return
    if not args.live:
        land = Landscape.load(args.landscape or [LANDSCAPE], **options)
        summary, _ = report(land, args)
        if args.json is not None:
            args.json.write_text(json.dumps({"live": False, "budget": args.budget,
                                             "summary": summary}, indent=1) + "\n")  # fmt: skip
        return
    with engine_process("tiny", batch_size=1) as url:
        probe = Probe(url, windows=args.windows, slo_s=args.slo_s)
        print("recording the grid live ...", flush=True)
        recording = probe.record(echo=False)
        print(f"grid: {len(recording['points'])} configs in {recording['meta']['recorded_s']} s, "
              f"load {recording['meta']['load_average']:.1f}", flush=True)  # fmt: skip
        if args.record is not None:
            args.record.write_text(json.dumps(recording, indent=1) + "\n")
        live = LiveLandscape(Landscape([recording], **options), probe)
        summary, runs = report(live, args)  # type: ignore[arg-type]
        result = playoff(live, runs, rounds=args.rounds)
    if args.json is not None:
        args.json.write_text(json.dumps({"live": True, "budget": args.budget,
                                         "grid": recording["meta"],
                                         "vs_recorded_grid": summary, "playoff": result,
                                         "runs": runs}, indent=1) + "\n")  # fmt: skip


def playoff(live: LiveLandscape, runs: list[dict[str, Any]], *, rounds: int) -> dict[str, Any]:
    """The grid's top 3 and every distinct pick, re-measured side by side in ``rounds``
    rounds of a shuffled order; then :func:`judge`."""
    land = live.land
    ranked = sorted(
        (p for p in land.points.values() if p["p99_s"]["mean"] <= land.limit),
        key=lambda p: -p["goodput"]["mean"],
    )
    grid_top = [land.key(p["config"]) for p in ranked[:3]]
    keys = list(dict.fromkeys(grid_top + [land.key(r["pick"]) for r in runs if r["pick"]]))
    rng = random.Random(0)
    seen: dict[Key, list[tuple[float, float]]] = {key: [] for key in keys}
    started = time.perf_counter()
    for r in range(rounds):
        order = keys[:]
        rng.shuffle(order)
        for key in order:
            seen[key].append(live.measure(dict(zip(NAMES, key, strict=True)), rng))
        print(f"playoff round {r + 1}/{rounds}: load {os.getloadavg()[0]:.1f}", flush=True)
    print(
        f"playoff: {len(keys)} configs x {rounds} rounds in {time.perf_counter() - started:.0f} s"
    )
    result = judge(seen, grid_top, runs, limit=land.limit, grid_s=land.meta["recorded_s"])
    result["rounds"] = rounds
    return result


def judge(
    seen: dict[Key, list[tuple[float, float]]],
    grid_top: list[Key],
    runs: list[dict[str, Any]],
    *,
    limit: float,
    grid_s: float,
) -> dict[str, Any]:
    """Rounds 1, 3, 5, ... choose a reference, rounds 2, 4, 6, ... score every pick. Two
    references: the grid-best (the best of the grid's top 3) and the best config anyone
    found (the best of everything in the playoff)."""

    def mean(key: Key, half: int, i: int) -> float:
        return statistics.fmean(m[i] for m in seen[key][half::2])

    def best_of(keys: list[Key]) -> Key:
        feasible = [k for k in keys if mean(k, 0, 1) <= limit] or keys
        return max(feasible, key=lambda k: mean(k, 0, 0))

    def score(key: Key | None, reference: Key) -> float:
        if key is None or mean(key, 1, 1) > limit:
            return 0.0
        return mean(key, 1, 0) / mean(reference, 1, 0)

    references = {"grid-best": best_of(grid_top), "best found": best_of(list(seen))}
    print(f"{'config':<16} {'choose: goodput':>15} {'score: goodput':>14} {'p99 ms':>7}  ratio to "
          + " / ".join(references))  # fmt: skip
    configs = []
    for key in sorted(seen, key=lambda k: -mean(k, 1, 0)):
        marks = [name for name, ref in references.items() if ref == key]
        marks += ["grid top 3"] if key in grid_top and "grid-best" not in marks else []
        ratios = " / ".join(f"{score(key, ref):.3f}" for ref in references.values())
        print(f"{'/'.join(map(str, key)):<16} {mean(key, 0, 0):15.1f} {mean(key, 1, 0):14.1f} "
              f"{mean(key, 1, 1) * 1000:7.0f}  {ratios}"
              + (f" ({', '.join(marks)})" if marks else ""))  # fmt: skip
        configs.append({"config": dict(zip(NAMES, key, strict=True)),
                        "goodput": [round(m[0], 1) for m in seen[key]],
                        "p99_ms": [round(m[1] * 1000) for m in seen[key]]})  # fmt: skip
    summaries = {}
    for name, reference in references.items():
        scores: dict[str, list[float]] = {"grid": [score(grid_top[0], reference)]}
        took: dict[str, list[float]] = {"grid": [grid_s]}
        for run in runs:
            key = Landscape.key(run["pick"]) if run["pick"] else None
            scores.setdefault(run["method"], []).append(score(key, reference))
            took.setdefault(run["method"], []).append(run["seconds"])
        print(f"scores against the {name} ({'/'.join(map(str, reference))}); "
              "grid = the grid's own pick, one run:")  # fmt: skip
        summaries[name] = table(scores, took)
    return {
        "grid_top": [dict(zip(NAMES, k, strict=True)) for k in grid_top],
        "references": {n: dict(zip(NAMES, k, strict=True)) for n, k in references.items()},
        "configs": configs,
        "summary": summaries,
    }


def judge_file(path: Path, limit: float) -> None:
    """The playoff of an earlier ``--live --json`` run, judged again (no engine needed)."""
    data = json.loads(path.read_text())
    seen = {
        Landscape.key(c["config"]): [(g, q / 1000) for g, q in zip(c["goodput"], c["p99_ms"], strict=True)]
        for c in data["playoff"]["configs"]
    }  # fmt: skip
    grid_top = [Landscape.key(c) for c in data["playoff"]["grid_top"]]  # in the grid's order
    judge(seen, grid_top, data["runs"], limit=limit, grid_s=data["grid"]["recorded_s"])


def table(scores: dict[str, list[float]], took: dict[str, list[float]]) -> dict[str, Any]:
    print(
        f"{'method':<8} {'median':>7} {'mean':>6} {'p10':>6} {'min':>6} {'>=0.97':>7} {'s/run':>7}"
    )
    summary = {}
    for name, values in scores.items():
        ordered = sorted(values)
        p10 = ordered[max(0, int(0.1 * len(ordered)) - 1)]
        hit = sum(s >= 0.97 for s in ordered) / len(ordered)
        summary[name] = {"median": statistics.median(ordered), "mean": statistics.fmean(ordered),
                         "p10": p10, "min": ordered[0], "hit": hit,
                         "s_per_run": statistics.fmean(took[name])}  # fmt: skip
        print(f"{name:<8} {summary[name]['median']:7.3f} {summary[name]['mean']:6.3f} "
              f"{p10:6.3f} {ordered[0]:6.3f} {hit:7.0%} {summary[name]['s_per_run']:7.3f}",
              flush=True)  # fmt: skip
    return summary


def rescore(land: Landscape, path: Path) -> None:
    """Live picks scored against another (or a pooled) recording of the grid: the live runs
    are the expensive part, the reference they are scored against can be improved later."""
    runs = json.loads(path.read_text())["runs"]
    print(f"{len(runs)} live runs from {path}; reference: {len(land.points)} configs, "
          f"best feasible goodput {land.best:.1f} req/s")  # fmt: skip
    scores: dict[str, list[float]] = {}
    took: dict[str, list[float]] = {}
    for run in runs:
        score = land.score(run["pick"])
        scores.setdefault(run["method"], []).append(score)
        took.setdefault(run["method"], []).append(run["seconds"])
        print(f"  {run['method']} seed {run['seed']}: pick {run['pick']} -> {score:.3f}")
    table(scores, took)


def report(
    land: Landscape, args: argparse.Namespace
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    optuna.logging.set_verbosity(logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    runners: dict[str, Callable[[int], dict[str, Any] | None]] = {
        "tuner": lambda s: run_optuna(land, "auto", args.budget, s),
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
    methods = args.methods.split(" ")
    for name in methods:
        if name not in runners:
            runners[name] = ablation(land, name, args.budget)
    print(f"landscape: {size} configs, recorded {land.meta}")
    print(f"budget {args.budget} trials = {args.budget / size:.0%} of the grid; "
          f"{args.seeds} seeds; SLO p99 <= {args.slo_s * 1000:g} ms, margin {args.margin:.0%}")  # fmt: skip
    # Live runs go seed by seed, every method within a seed, so that a change in the shared
    # machine's load over the run falls on all methods alike instead of on the last one.
    order = (
        [(name, seed) for seed in range(args.seeds) for name in methods]
        if args.live
        else [(name, seed) for name in methods for seed in range(args.seeds)]
    )
    scores: dict[str, list[float]] = {name: [] for name in methods}
    took: dict[str, list[float]] = {name: [] for name in methods}
    runs: list[dict[str, Any]] = []
    for name, seed in order:
        load_before = os.getloadavg()[0]
        logged = len(getattr(land, "log", []))
        started = time.perf_counter()
        chosen = runners[name](seed)
        scores[name].append(land.score(chosen))
        took[name].append(time.perf_counter() - started)
        if args.live:
            runs.append({"method": name, "seed": seed, "pick": chosen,
                         "score": scores[name][-1], "seconds": round(took[name][-1], 1),
                         "load_average": [load_before, os.getloadavg()[0]],
                         "trials": land.log[logged:]})  # type: ignore[attr-defined]  # fmt: skip
            print(f"  {name} seed {seed}: pick {chosen} -> {scores[name][-1]:.3f} "
                  f"({took[name][-1]:.0f} s, load {load_before:.1f} -> "
                  f"{os.getloadavg()[0]:.1f})", flush=True)  # fmt: skip
    if args.live:
        print("scores against the grid recorded in this run:")
    summary = table(scores, took)
    return summary, runs


if __name__ == "__main__":
    main()
