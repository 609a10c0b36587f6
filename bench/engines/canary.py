"""Canary breach: time from the canary's first step to its weight at 0, and the share of
requests that reached the bad config, over several rollouts.

A two-replica reference engine behind HAProxy (kind=process), SLO p99 <= 500 ms; the bad
config makes each request wait up to a second for its batch (max_queue_delay_ms=1000,
max_batch_size=64). Each rollout starts the canary at 1 %; the guard judges it against the
other replica at the same time. "detect" is the canary's first step to the breach verdict,
"weight 0" the verdict to its share at 0 in HAProxy.

    .venv/bin/python bench/engines/canary.py [--trials 5] [--rate 40] [--share 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from load import BackgroundLoad

from controlplane.domain import parse_slo
from controlplane.engines import adapter_for
from controlplane.engines.process import ProcessSpec
from controlplane.engines.process import Supervisor
from controlplane.engines.process import running
from controlplane.guard import RolloutRunner
from controlplane.guard import propose
from controlplane.schemas.engines import EngineCreate
from controlplane.settings import GuardSettings
from controlplane.settings import Settings
from controlplane.store import engines
from controlplane.store import rollouts
from controlplane.store import schema
from controlplane.store import slos
from controlplane.store.database import make_engine
from controlplane.store.database import make_session_factory
from controlplane.store.database import unit_of_work

ENGINE_BIN = str(Path(sys.executable).parent / "cplane-engine")
POLICY = GuardSettings(interval_s=0.2, min_requests=10, no_data_timeout_s=15.0)
BAD = {"max_queue_delay_ms": 1000.0, "max_batch_size": 64}


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--rate", type=float, default=40.0)
    parser.add_argument("--share", type=float, default=1.0, help="canary share, percent")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-canary-"))
    settings = Settings(database_url=f"sqlite:///{work / 'cp.db'}", data_dir=work)
    db = make_engine(settings)
    schema.upgrade(db)
    sessions = make_session_factory(db)
    spec = ProcessSpec(
        name="fleet",
        preset="reference",
        command=(ENGINE_BIN, "serve", "--model", "tiny"),
        replicas=2,
        config={"max_batch_size": 8},
    )
    sup = Supervisor(spec, work / "fleet")
    sup.start()
    running.register(sup)
    try:
        with unit_of_work(sessions) as s:
            data = EngineCreate.model_validate(
                {"name": "fleet", "kind": "process", "url": sup.url}
            )
            row = engines.add_engine(s, data=data, actor="bench")
            slos.set_slo(s, engine_id=row.id, slo=parse_slo("p99_ms<=500"), actor="bench")
            engine_id = row.id
        detect, to_zero, shares = [], [], []
        for trial in range(args.trials):
            with unit_of_work(sessions) as s:
                row = engines.get_engine(s, engine_id)
                adapter = adapter_for(engines.engine_target(row))
                try:
                    plan = propose(
                        s, engine=row, adapter=adapter, changes=BAD, reason="manual",
                        actor="bench", bake_s=60.0, canary=f"{args.share:g}%:120s,50%:10s",
                    )  # fmt: skip
                finally:
                    adapter.close()
            assert plan.rollout_id is not None
            load = BackgroundLoad(sup.url, rate=args.rate)
            state = RolloutRunner(session_factory=sessions, policy=POLICY).execute(plan.rollout_id)
            load.stop()
            with sessions() as s:
                evidence = rollouts.get_rollout(s, plan.rollout_id).evidence
            step = evidence["canary"]["steps"][0]
            canary_n = step["slos"]["p99"]["canary"]["n"]
            fleet_n = step["slos"]["p99"]["fleet"]["n"]
            detect.append(step["ended_s"] - step["started_s"])
            to_zero.append(evidence["rollback"]["breach_to_weight_0_s"])
            shares.append(canary_n / max(1, canary_n + fleet_n))
            print(
                f"trial {trial}: {state.value}, detect {detect[-1]:.2f} s, weight 0 after "
                f"{to_zero[-1]:.3f} s, canary served {canary_n} of {canary_n + fleet_n} "
                f"({100 * shares[-1]:.2f} %), load failed {load.failed} of {load.sent}",
                flush=True,
            )
        total = [d + z for d, z in zip(detect, to_zero, strict=True)]
        print(
            f"canary at {args.share:g} %: first step to weight 0 p50 {statistics.median(total):.2f} s, "
            f"p95 {_p95(total):.2f} s (verdict to weight 0 p95 {_p95(to_zero):.3f} s); "
            f"share of requests on the bad config p50 {100 * statistics.median(shares):.2f} %"
        )
    finally:
        running.unregister("fleet")
        sup.stop()


if __name__ == "__main__":
    main()
