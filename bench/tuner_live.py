"""A live tuning run on the reference engine: improvement over the default and cost.

Starts a reference engine on a deliberately poor default (batch 1), registers it in a
throw-away SQLite store with an SLO for the guard, and runs the real tuner end to end:
baseline, guarded trials, re-measurement of best vs default (mean and 95 % CI), guarded
apply, HTML report. Prints tuned / default goodput and the wall time per trial and study.

    python bench/tuner_live.py [--trials 8] [--load concurrency=16] [--quick]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine_common import ADMIN_TOKEN  # noqa: E402
from engine_common import engine_process  # noqa: E402

from controlplane.domain import parse_slo  # noqa: E402
from controlplane.engines import adapter_for  # noqa: E402
from controlplane.schemas.engines import EngineCreate  # noqa: E402
from controlplane.schemas.tuning import TuningCreate  # noqa: E402
from controlplane.settings import GuardSettings  # noqa: E402
from controlplane.settings import Settings  # noqa: E402
from controlplane.settings import TunerSettings  # noqa: E402
from controlplane.store import engines  # noqa: E402
from controlplane.store import schema  # noqa: E402
from controlplane.store import slos  # noqa: E402
from controlplane.store.database import make_engine  # noqa: E402
from controlplane.store.database import make_session_factory  # noqa: E402
from controlplane.store.database import unit_of_work  # noqa: E402
from tuner import Tuner  # noqa: E402
from tuner import start_run  # noqa: E402
from tuner import storage_url  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--load", default="concurrency=16,shapes=16x8")
    parser.add_argument("--slo", default="p99_ms<=500")
    parser.add_argument("--knobs", default="max_batch_size,streams,precision")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="short windows and bakes")
    args = parser.parse_args()
    logging.getLogger("optuna").setLevel(logging.WARNING)
    quick = args.quick
    guard = GuardSettings(
        interval_s=0.2, baseline_s=1.0 if quick else 3.0, warmup_s=0.3,
        bake_s=2.0 if quick else 5.0, min_requests=15, no_data_timeout_s=2.0,
        unreachable_s=1.5, rollback_timeout_s=30.0, heartbeat_s=0.5, stale_after_s=5.0,
    )  # fmt: skip
    tuner_policy = TunerSettings(
        warmup_s=0.5 if quick else 2.0, window_s=1.0 if quick else 3.0,
        max_windows=4 if quick else 6, repeats=3,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, engine_process("tiny", batch_size=1) as url:
        settings = Settings(data_dir=Path(tmp), guard=guard, tuner=tuner_policy)
        store = make_engine(settings)
        schema.upgrade(store)
        sessions = make_session_factory(store)
        with unit_of_work(sessions) as s:
            data = EngineCreate.model_validate(
                {"name": "ref", "url": url, "admin_token": ADMIN_TOKEN}
            )
            row = engines.add_engine(s, data=data, actor="bench")
            slos.set_slo(s, engine_id=row.id, slo=parse_slo("p99_ms<=2000"), actor="bench")
            adapter = adapter_for(engines.engine_target(row))
            request = TuningCreate.model_validate(
                {"slo": [args.slo], "load": args.load, "trials": args.trials,
                 "knobs": args.knobs.split(","), "seed": args.seed}
            )  # fmt: skip
            run = start_run(
                s, engine_ref="ref", request=request, adapter=adapter,
                policy=settings.tuner, actor="bench",
            )  # fmt: skip
            adapter.close()
            run_id = run.id
        started = time.monotonic()
        result = Tuner(
            session_factory=sessions, storage_url=storage_url(store), settings=settings
        ).run(run_id)
        took = time.monotonic() - started
        store.dispose()
    trials = result.get("trials", [])
    per_trial = [t["duration_s"] for t in trials]
    print(json.dumps({k: v for k, v in result.items() if k not in ("trials", "report")}, indent=1))
    for t in trials:
        print(f"  #{t['number']} {t['kind']:<8} {json.dumps(t['params']):<62} {t['outcome']:<10} "
              f"goodput={t['goodput']} p99_ms={t['p99_ms']} {t['duration_s']} s")  # fmt: skip
    remeasured = result.get("remeasured") or {}
    if remeasured:
        d, b = remeasured["default"], remeasured["best"]
        print(f"default goodput {d['mean']:.1f} req/s (CI {d['ci']}), tuned {b['mean']:.1f} "
              f"(CI {b['ci']}): {result.get('improvement', 0):.2f}x")  # fmt: skip
    print(f"study wall time {took:.0f} s; per trial median {statistics.median(per_trial):.1f} s "
          f"(min {min(per_trial):.1f}, max {max(per_trial):.1f}); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")  # fmt: skip


if __name__ == "__main__":
    main()
