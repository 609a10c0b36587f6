"""Guard benchmarks with real breaches on a real engine under real load.

Scenarios (each run: a fresh baseline, a guarded change, the guard's own evidence read back):
  slow   a config too slow for the offered load (max_batch_size 8 -> 1 under Poisson load the
         default handles); time from the change serving to LKG serving again
  pause  the engine SIGSTOPped for --pause-s during a harmless change's bake
  hog    CPU hog processes started beside the engine during a harmless change's bake
  false  a harmless change (max_queue_delay_ms 0 <-> 1) baked under noisy Poisson load:
         how many are rolled back (false rollbacks)
  trace  no rollout: Poisson load for --trace-s with a harmless live switch every 10 s; where
         the SLO's violations fall relative to the switches, how clustered they are, and the
         decision rule replayed (without and with confirmation) over each switch and over
         the quiet points between them
  size   breaches of increasing size (max_queue_delay_ms raised so p99 grows x1.2 .. x5):
         detection time vs the p99 ratio the guard measured; writes a PNG plot

    python bench/guard_breach.py --scenario slow --runs 20
    python bench/guard_breach.py --scenario false --runs 100
    python bench/guard_breach.py --scenario size --runs 5 --plot docs/guard-detection.png
    python bench/guard_breach.py --scenario trace --trace-s 80
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script, from anywhere

from controlplane.domain import EngineTarget
from controlplane.domain import parse_slo
from controlplane.engines import adapter_for
from controlplane.guard import RolloutRunner
from controlplane.guard import propose
from controlplane.guard.sequential import ConfirmedMonitor
from controlplane.guard.sequential import upper_bound
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
from tuner.loadgen import RequestRecord
from tuner.loadgen import RequestShape
from tuner.loadgen import percentile
from tuner.loadgen import run_load_sync

POLICY = GuardSettings(
    interval_s=0.25, baseline_s=3.0, warmup_s=0.3, bake_s=5.0, min_requests=20,
    no_data_timeout_s=5.0, unreachable_s=1.5, rollback_timeout_s=30.0, confirm_s=2.0,
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
        rollout = rollouts.get_rollout(s, plan.rollout_id)
        return {"state": state.value, "evidence": rollout.evidence}


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


def breach_onset(
    records: Sequence[RequestRecord], bake_rel: float, baseline_s: float
) -> float | None:
    """Completion time (relative to the load's start) at which the p99 of the last second's
    completions first exceeds twice the baseline's client p99; ``None`` if it never does."""
    done = sorted((r.start_s + r.latency_s, r.latency_s) for r in records if r.status == "ok")
    base = [lat for end, lat in done if bake_rel - baseline_s <= end <= bake_rel]
    base_p99 = percentile(base, 99)
    if base_p99 is None:
        return None
    recent: deque[tuple[float, float]] = deque()
    for end, lat in done:
        if end <= bake_rel:
            continue
        recent.append((end, lat))
        while recent[0][0] <= end - 1.0:
            recent.popleft()
        p99 = percentile([x for _, x in recent], 99)
        if len(recent) >= 10 and p99 is not None and p99 > 2 * base_p99:
            return end
    return None


def one_run(kind: str, engine: RunningEngine, sessions: SessionFactory, engine_id: int,
            rate: float, i: int, args: argparse.Namespace) -> dict[str, Any]:  # fmt: skip
    # Load covers the baseline, the bake, a suspicion held open past it, and the rollback.
    tail = 8.0 if kind in ("slow", "pause", "hog") else POLICY.confirm_s + 1.5
    load_t0 = time.monotonic()
    load = Load(engine.url, rate=rate, duration_s=POLICY.baseline_s + POLICY.bake_s + tail, seed=i)
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
        "dismissed": verdict.get("dismissed"), "summary": verdict.get("summary"),
        "failure_causes": sorted({f"{r.http_status}: {(r.error or '')[:80]}" for r in result.records if r.status != "ok"}),
    }  # fmt: skip
    if verdict.get("at_s") is not None and rollback.get("duration_s") is not None:
        # From the change serving (bake start) to LKG serving again.
        record["to_lkg_s"] = round(verdict["at_s"] + rollback["duration_s"], 3)
    if onset:
        bake_start = started + POLICY.baseline_s  # approximately; refined below when known
        record["fault_onset_after_bake_s"] = round(onset[0] - bake_start, 3)
        record["fault_to_lkg_s"] = round(finished - onset[0], 3)
    if kind in ("slow", "size") and record.get("to_lkg_s") is not None:
        # A too-slow config breaches as its queue builds, not the instant it serves: onset is
        # when the client's p99 over the last second of completions first exceeds twice the
        # client's p99 over the baseline (the goal's "a breach that doubles p99").
        bake_rel = finished - record["to_lkg_s"] - load_t0
        onset_rel = breach_onset(result.records, bake_rel, POLICY.baseline_s)
        if onset_rel is not None:
            record["fault_onset_after_bake_s"] = round(onset_rel - bake_rel, 3)
            record["fault_to_lkg_s"] = round(finished - load_t0 - onset_rel, 3)
    base = ev.get("baseline", {}).get("slos", {}).get("p99", {}).get("quantile_s")
    breach_q = verdict.get("quantile_s")
    if isinstance(breach_q, dict):
        breach_q = breach_q.get("p99")
    if base and breach_q:
        record["p99_ratio"] = round(breach_q / base, 2)
    if out["state"] != "committed" or kind in ("size", "slow"):
        # Size and slow runs start from the default whether or not their breach was caught.
        restore(engine, {"max_batch_size": 8, "max_queue_delay_ms": 0.0})
    return record


def trace(
    engine: RunningEngine, rate: float, threshold_s: float, args: argparse.Namespace
) -> None:
    """Do violations follow the switch, or the moment? Client-side latencies, 0.25 s bins."""
    t0 = time.perf_counter()
    load = Load(engine.url, rate=rate, duration_s=args.trace_s, seed=1)
    switches: list[float] = []
    delay = 0.0
    while len(switches) < int(args.trace_s // 10) - 1:
        time.sleep(max(0.0, 10.0 * (len(switches) + 1) - (time.perf_counter() - t0)))
        delay = 0.0 if delay else 1.0
        restore(engine, {"max_queue_delay_ms": delay})
        switches.append(time.perf_counter() - t0)  # the new config serves from here
    done = sorted((r.start_s + r.latency_s, r.latency_s) for r in load.join().records)

    def since(t: float) -> float:
        return min((t - s for s in switches if s <= t), default=math.inf)

    print(f"{len(done)} requests, switches at {[round(s, 1) for s in switches]}")
    for lo, hi in ((0, 0.5), (0.5, 1), (1, 2), (2, 4), (4, math.inf)):
        lat = [x for t, x in done if lo <= since(t) < hi]
        bad = sum(x > threshold_s for x in lat)
        print(
            f"  {lo}-{hi} s after a switch: {bad} of {len(lat)} over {threshold_s * 1000:.0f} ms"
        )
    bins: dict[int, list[float]] = {}
    for t, x in done:
        bins.setdefault(int(t / POLICY.interval_s), []).append(x)
    late = {b: sum(x > threshold_s for x in v) for b, v in bins.items()}
    print("  intervals with violations (s: late/finished):",
          [(round(b * POLICY.interval_s, 2), f"{k}/{len(bins[b])}") for b, k in sorted(late.items()) if k])  # fmt: skip
    per5 = [sum(late.get(b, 0) for b in range(i, i + 20)) for i in range(0, max(bins) - 19, 20)]
    n5 = [
        sum(len(bins.get(b, [])) for b in range(i, i + 20)) for i in range(0, max(bins) - 19, 20)
    ]
    p = sum(per5) / max(1, sum(n5))
    binomial = statistics.mean(n * p * (1 - p) for n in n5)
    print(f"  violations per 5 s window {per5}: variance {statistics.pvariance(per5):.1f}, "
          f"{binomial:.1f} if requests were independent")  # fmt: skip
    for confirm_s in (0.0, POLICY.confirm_s):
        at_switch = [replay(done, s, threshold_s, confirm_s) for s in switches]
        between = [replay(done, s + 5.0, threshold_s, confirm_s) for s in switches]
        print(f"  rule replayed, confirm_s={confirm_s}: breaches over switches {sum(at_switch)}"
              f"/{len(at_switch)}, over quiet points {sum(between)}/{len(between)}")  # fmt: skip


def replay(
    done: list[tuple[float, float]], at: float, threshold_s: float, confirm_s: float
) -> bool:
    """The guard's rule over client-side records: baseline before ``at``, bake after it."""
    base = [x for t, x in done if at - POLICY.baseline_s <= t < at]
    k0 = sum(x > threshold_s for x in base)
    p0 = max(0.01, upper_bound(len(base), k0)) if len(base) >= POLICY.min_requests else 0.01
    monitor = ConfirmedMonitor(p0=p0, alpha=POLICY.alpha / 2, restart_s=POLICY.restart_s,
                               confirm_s=confirm_s, min_requests=POLICY.min_requests)  # fmt: skip
    tick = at + POLICY.warmup_s
    while tick < at + POLICY.bake_s + confirm_s:
        tick += POLICY.interval_s
        bake = [x for t, x in done if at + POLICY.warmup_s <= t < tick]
        decision = monitor.update(n=len(bake), k=sum(x > threshold_s for x in bake), now=tick - at)
        if decision.state == "breach":
            return True
        if tick >= at + POLICY.bake_s and not monitor.suspect:
            return False
    return False


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
        "--scenario", choices=["slow", "pause", "hog", "false", "size", "trace"], required=True
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
    parser.add_argument(
        "--confirm-s", type=float, default=POLICY.confirm_s, help="0 = no confirmation"
    )
    parser.add_argument("--trace-s", type=float, default=80.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    POLICY.confirm_s = args.confirm_s  # the one knob compared across runs
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
        if p99 > 1.0:
            # An open-loop queue that never drains: the capacity probe was disturbed.
            parser.exit(2, f"baseline p99 {p99:.1f} s at {rate} req/s: machine overloaded\n")
        threshold_ms = round(p99 * (1.1 if args.scenario == "size" else 1.5) * 1000)
        set_slo(sessions, engine_id, f"p99_ms<={threshold_ms}")
        set_slo(sessions, engine_id, "error_rate<=1%")
        print(
            f"SLOs: p99_ms<={threshold_ms}, error_rate<=1%; alpha={POLICY.alpha}, "
            f"interval={POLICY.interval_s} s, confirm={POLICY.confirm_s} s; load {os.getloadavg()[0]:.2f}"
        )
        if args.scenario == "trace":
            trace(engine, rate, threshold_ms / 1000, args)
            return
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
    print("---", f"load {os.getloadavg()[0]:.2f}")
    print("unconfirmed suspicions dismissed:", sum(r.get("dismissed") or 0 for r in records))
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
