"""Guard benchmarks with real breaches on a real engine under real load.

Scenarios (each run: a fresh baseline, a guarded change, the guard's own evidence read back):
  slow   a config too slow for the offered load (max_batch_size 8 -> 1 under Poisson load the
         default handles); time from the change serving to LKG serving again
  pause  the engine SIGSTOPped for --pause-s during a harmless change's bake
  hog    CPU hog processes started beside the engine during a harmless change's bake
  false  a harmless change (max_queue_delay_ms 0 <-> 1) baked under noisy Poisson load:
         how many are rolled back (false rollbacks)
  size   breaches of increasing size (max_queue_delay_ms raised so p99 grows x1.2 .. x5):
         detection time vs the p99 ratio the guard measured; writes a PNG plot

    python bench/guard_breach.py --scenario slow --runs 20
    python bench/guard_breach.py --scenario false --runs 100
    python bench/guard_breach.py --scenario size --runs 5 --plot docs/guard-detection.png
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from controlplane.domain import EngineTarget
from controlplane.domain import parse_slo
from controlplane.engines import adapter_for
from controlplane.guard import RolloutRunner
from controlplane.guard import propose
from controlplane.schemas.engines import EngineCreate
from controlplane.settings import GuardSettings
from controlplane.settings import Settings
from controlplane.store import engines
from controlplane.store import rollouts
from controlplane.store import schema
from controlplane.store import slos
from controlplane.store.database import SessionFactory
from controlplane.store.database import make_engine
from controlplane.store.database import make_session_factory
from controlplane.store.database import unit_of_work
from tests.fixtures.engines import RunningEngine
from tests.fixtures.engines import start_engine
from tuner.loadgen import LoadResult
from tuner.loadgen import LoadSpec
from tuner.loadgen import RequestShape
from tuner.loadgen import run_load_sync

POLICY = GuardSettings(
    interval_s=0.25, baseline_s=3.0, warmup_s=0.3, bake_s=5.0, min_requests=20,
    no_data_timeout_s=5.0, unreachable_s=1.5, rollback_timeout_s=30.0,
)  # fmt: skip
FLAGGER_ARGO = (
    "Flagger: analysis interval >= 10 s (default 60 s) x threshold (default 1), over a 1 m "
    "metric window; Argo Rollouts: (failureLimit + 1) x interval plus the query window "
    "(docs example 4 x 5 m)."
)


class Load:
    def __init__(self, url: str, *, rate: float, duration_s: float, seed: int) -> None:
        spec = LoadSpec(
            base_url=url, model="tiny", mode="poisson", rate=rate, duration_s=duration_s,
            shapes=(RequestShape(16, 16),), extra_body={"ignore_eos": True}, seed=seed,
        )  # fmt: skip
        self.result: LoadResult | None = None
        self._thread = threading.Thread(target=self._run, args=(spec,), daemon=True)
        self._thread.start()

    def _run(self, spec: LoadSpec) -> None:
        self.result = run_load_sync(spec)

    def join(self) -> LoadResult:
        self._thread.join()
        assert self.result is not None
        return self.result


@contextmanager
def bench_setup(workdir: Path) -> Iterator[tuple[RunningEngine, SessionFactory, int]]:
    engine = start_engine(workdir, "--batch-size", "8", "--max-queue", "4096")
    store = make_engine(Settings(data_dir=workdir))
    schema.upgrade(store)
    sessions = make_session_factory(store)
    with unit_of_work(sessions) as s:
        data = EngineCreate.model_validate(
            {"name": "ref", "url": engine.url, "admin_token": engine.admin_token}
        )
        engine_id = engines.add_engine(s, data=data, actor="bench").id
    try:
        yield engine, sessions, engine_id
    finally:
        engine.stop()
        store.dispose()


def set_slo(sessions: SessionFactory, engine_id: int, spec: str) -> None:
    with unit_of_work(sessions) as s:
        slos.set_slo(s, engine_id=engine_id, slo=parse_slo(spec), actor="bench")


def baseline_p99(url: str, rate: float) -> float:
    result = run_load_sync(
        LoadSpec(base_url=url, model="tiny", mode="poisson", rate=rate, duration_s=6,
                 shapes=(RequestShape(16, 16),), extra_body={"ignore_eos": True})
    )  # fmt: skip
    assert result.p99 is not None
    return result.p99


def guarded(sessions: SessionFactory, engine_id: int, changes: dict[str, Any]) -> dict[str, Any]:
    with unit_of_work(sessions) as s:
        row = engines.get_engine(s, engine_id)
        adapter = adapter_for(engines.engine_target(row))
        try:
            plan = propose(s, engine=row, adapter=adapter, changes=changes, reason="manual",
                           actor="bench", bake_s=POLICY.bake_s)  # fmt: skip
        finally:
            adapter.close()
    assert plan.rollout_id is not None
    state = RolloutRunner(session_factory=sessions, policy=POLICY).execute(plan.rollout_id)
    with sessions() as s:
        row = rollouts.get_rollout(s, plan.rollout_id)
        return {"state": state.value, "evidence": row.evidence}


def restore(engine: RunningEngine, config: dict[str, Any]) -> None:
    adapter = adapter_for(
        EngineTarget("ref", "reference", engine.url, admin_token=engine.admin_token)
    )
    try:
        adapter.apply(config)
    finally:
        adapter.close()


def current_config(engine: RunningEngine) -> dict[str, Any]:
    adapter = adapter_for(
        EngineTarget("ref", "reference", engine.url, admin_token=engine.admin_token)
    )
    try:
        return dict(adapter.current_config())
    finally:
        adapter.close()


def _hog(stop_at: float) -> None:
    x = 0
    while time.time() < stop_at:
        x += 1


def one_run(kind: str, engine: RunningEngine, sessions: SessionFactory, engine_id: int,
            rate: float, i: int, args: argparse.Namespace) -> dict[str, Any]:  # fmt: skip
    load = Load(engine.url, rate=rate, duration_s=POLICY.baseline_s + POLICY.bake_s + 8, seed=i)
    fault: threading.Thread | None = None
    onset: list[float] = []
    if kind in ("pause", "hog"):

        def inject() -> None:
            time.sleep(POLICY.baseline_s + 1.5)
            onset.append(time.monotonic())
            if kind == "pause":
                os.kill(engine.process.pid, signal.SIGSTOP)  # the engine's own process
                time.sleep(args.pause_s)
                os.kill(engine.process.pid, signal.SIGCONT)
            else:
                stop_at = time.time() + 4.0
                procs = [
                    multiprocessing.Process(target=_hog, args=(stop_at,)) for _ in range(args.hogs)
                ]
                for p in procs:
                    p.start()
                for p in procs:
                    p.join()

        fault = threading.Thread(target=inject)
        fault.start()
    if kind == "slow":
        changes: dict[str, Any] = {"max_batch_size": 1}
    elif kind == "size":
        changes = {"max_queue_delay_ms": float(args.delay_ms)}
    else:
        # Harmless: flip the batching wait between 0 and 1 ms, from whatever serves now.
        current = current_config(engine).get("max_queue_delay_ms", 0.0)
        changes = {"max_queue_delay_ms": 0.0 if current else 1.0}
    started = time.monotonic()
    out = guarded(sessions, engine_id, changes)
    finished = time.monotonic()
    if fault is not None:
        fault.join()
    result = load.join()
    ev = out["evidence"]
    verdict = ev.get("verdict", {})
    rollback = ev.get("rollback", {})
    record = {
        "run": i, "state": out["state"], "outcome": verdict.get("outcome"),
        "detect_s": verdict.get("at_s"), "rollback_s": rollback.get("duration_s"),
        "client_failed": result.failed, "client_rejected": result.rejected, "sent": result.sent,
        "failure_causes": sorted({f"{r.http_status}: {(r.error or '')[:80]}" for r in result.records if r.status != "ok"}),
    }  # fmt: skip
    if verdict.get("at_s") is not None and rollback.get("duration_s") is not None:
        # From the change serving (bake start) to LKG serving again.
        record["to_lkg_s"] = round(verdict["at_s"] + rollback["duration_s"], 3)
    if onset:
        bake_start = started + POLICY.baseline_s  # approximately; refined below when known
        record["fault_onset_after_bake_s"] = round(onset[0] - bake_start, 3)
        record["fault_to_lkg_s"] = round(finished - onset[0], 3)
    base = ev.get("baseline", {}).get("slos", {}).get("p99", {}).get("quantile_s")
    breach_q = verdict.get("quantile_s")
    if isinstance(breach_q, dict):
        breach_q = breach_q.get("p99")
    if base and breach_q:
        record["p99_ratio"] = round(breach_q / base, 2)
    if out["state"] != "committed" or kind == "size":
        # A size run starts from the default whether or not its breach was caught.
        restore(engine, {"max_batch_size": 8, "max_queue_delay_ms": 0.0})
    return record


def summary(records: list[dict[str, Any]], key: str) -> str:
    values = sorted(r[key] for r in records if r.get(key) is not None)
    if not values:
        return f"{key}: no data"
    p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
    return f"{key}: n={len(values)} p50={statistics.median(values):.2f} s p95={p95:.2f} s max={values[-1]:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scenario", choices=["slow", "pause", "hog", "false", "size"], required=True
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="Poisson rate; 0 = 60 %% of capacity"
    )
    parser.add_argument("--pause-s", type=float, default=3.0)
    parser.add_argument("--hogs", type=int, default=4)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--sizes", default="1.2,1.5,2,5")
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    records: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        bench_setup(Path(tmp)) as (engine, sessions, engine_id),
    ):
        capacity = run_load_sync(LoadSpec(base_url=engine.url, model="tiny", mode="closed", concurrency=8,
                                          duration_s=5, shapes=(RequestShape(16, 16),),
                                          extra_body={"ignore_eos": True})).achieved_rps  # fmt: skip
        rate = args.rate or round(0.6 * capacity, 1)
        p99 = baseline_p99(engine.url, rate)
        print(
            f"capacity {capacity:.1f} req/s (closed loop, 8 users); offered {rate} req/s; baseline p99 {p99 * 1000:.0f} ms"
        )
        threshold_ms = round(p99 * (1.1 if args.scenario == "size" else 1.5) * 1000)
        set_slo(sessions, engine_id, f"p99_ms<={threshold_ms}")
        set_slo(sessions, engine_id, "error_rate<=1%")
        print(
            f"SLOs: p99_ms<={threshold_ms}, error_rate<=1%; alpha={POLICY.alpha}, interval={POLICY.interval_s} s"
        )
        if args.scenario == "size":
            for size in (float(x) for x in args.sizes.split(",")):
                args.delay_ms = round((size - 1.0) * p99 * 1000, 1)
                for i in range(args.runs):
                    r = one_run("size", engine, sessions, engine_id, rate, i, args)
                    r["target_ratio"] = size
                    records.append(r)
                    print(json.dumps(r), flush=True)
        else:
            for i in range(args.runs):
                r = one_run(args.scenario, engine, sessions, engine_id, rate, i, args)
                records.append(r)
                print(json.dumps(r), flush=True)
    print("---")
    states = [r["state"] for r in records]
    print({s: states.count(s) for s in sorted(set(states))})
    print(
        f"client requests failed: {sum(r['client_failed'] for r in records)} of {sum(r['sent'] for r in records)}"
    )
    for key in ("detect_s", "to_lkg_s", "fault_to_lkg_s"):
        print(summary(records, key))
    if args.scenario in ("slow", "pause", "hog"):
        print("beside it:", FLAGGER_ARGO)
    if args.scenario == "size":
        print(f"{'target':>8}{'measured p99 ratio':>20}{'detect p50 s':>14}{'rolled back':>13}")
        for size in sorted({r["target_ratio"] for r in records}):
            rs = [r for r in records if r["target_ratio"] == size]
            ratios = [r["p99_ratio"] for r in rs if r.get("p99_ratio")]
            detects = [r["detect_s"] for r in rs if r["outcome"] == "breach"]
            print(f"{size:>8}{statistics.median(ratios) if ratios else float('nan'):>20.2f}"
                  f"{statistics.median(detects) if detects else float('nan'):>14.2f}"
                  f"{sum(r['state'] == 'rolled_back' for r in rs):>10}/{len(rs)}")  # fmt: skip
        if args.plot:
            plot(records, args.plot)
    if args.json:
        args.json.write_text(json.dumps(records, indent=1))


def plot(records: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [r["p99_ratio"] for r in records if r.get("p99_ratio") and r["outcome"] == "breach"]
    ys = [r["detect_s"] for r in records if r.get("p99_ratio") and r["outcome"] == "breach"]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(xs, ys)
    ax.set_xlabel("p99 during the breach / baseline p99 (measured)")
    ax.set_ylabel("detection time after the change served (s)")
    ax.set_xscale("log")
    ax.set_title("Guard detection time vs breach size")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot written to {path}")


if __name__ == "__main__":
    main()
