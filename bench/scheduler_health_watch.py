"""Health watch: from an engine failing after a committed change to the engine serving its
previous (last known good) config again.

A real reference engine and the real scheduler, guard and health watch on a SQLite store.
Each run commits a change through the guard (``max_batch_size`` 8 <-> 4), waits for a
passing inference check, then hangs the engine with SIGSTOP (t0). The watch's checks time
out; after ``--failures`` in a row it starts a ``health`` rollout and emits
``health.rollback`` (t1), at which point the engine is resumed with SIGCONT (a hang that
ends, so the restore can land); the figure is t0 until the engine reports the previous
config and answers a completion (t2). Goal: p95 <= interval x failures + 3 s.

    .venv/bin/python bench/scheduler_health_watch.py [--runs 8] [--interval 1] [--failures 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from controlplane.domain import EngineTarget  # noqa: E402
from controlplane.domain import RolloutState  # noqa: E402
from controlplane.domain import parse_slo  # noqa: E402
from controlplane.engines import adapter_for  # noqa: E402
from controlplane.guard import GuardEvent  # noqa: E402
from controlplane.guard import GuardService  # noqa: E402
from controlplane.guard import propose  # noqa: E402
from controlplane.scheduler import SchedulerService  # noqa: E402
from controlplane.scheduler.health_watch import HealthWatchSource  # noqa: E402
from controlplane.schemas.engines import EngineCreate  # noqa: E402
from controlplane.settings import GuardSettings  # noqa: E402
from controlplane.settings import HealthWatchSettings  # noqa: E402
from controlplane.settings import SchedulerSettings  # noqa: E402
from controlplane.settings import Settings  # noqa: E402
from controlplane.store import engines  # noqa: E402
from controlplane.store import health_watch  # noqa: E402
from controlplane.store import schema  # noqa: E402
from controlplane.store import slos  # noqa: E402
from controlplane.store.database import make_engine  # noqa: E402
from controlplane.store.database import make_session_factory  # noqa: E402
from tests.fixtures.engines import RunningEngine  # noqa: E402
from tests.fixtures.engines import start_engine  # noqa: E402

GUARD = GuardSettings(
    interval_s=0.2,
    baseline_s=0.2,
    warmup_s=0.2,
    bake_s=0.6,
    no_data_timeout_s=0.3,
    on_no_data="commit",
    rollback_timeout_s=60.0,
    heartbeat_s=0.5,
)


def _config(engine: RunningEngine) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {engine.admin_token}"}
    body: dict[str, object] = httpx.get(
        f"{engine.url}/admin/config", headers=headers, timeout=5
    ).json()
    return body


def _serves(engine: RunningEngine, batch: int) -> bool:
    try:
        if _config(engine).get("max_batch_size") != batch:
            return False
        reply = httpx.post(
            f"{engine.url}/v1/completions",
            json={"model": "tiny", "prompt": "hello", "max_tokens": 2},
            timeout=5,
        )
        return reply.status_code == 200
    except httpx.HTTPError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between checks")
    parser.add_argument("--failures", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    watch = HealthWatchSettings(
        interval_s=args.interval,
        failures=args.failures,
        window_s=3600,
        timeout_s=args.interval,
        tick_s=0.1,
    )
    goal = args.interval * args.failures + 3.0
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            guard=GUARD,
            health_watch=watch,
            scheduler=SchedulerSettings(lease_s=30.0, refresh_s=3600.0),
        )
        db = make_engine(settings)
        schema.upgrade(db)
        sessions = make_session_factory(db)
        engine = start_engine(Path(tmp), "--batch-size", "8")
        target = EngineTarget("ref", "reference", engine.url, admin_token=engine.admin_token)
        with sessions() as s, s.begin():
            data = EngineCreate.model_validate(
                {"name": "ref", "url": engine.url, "admin_token": engine.admin_token}
            )
            row = engines.add_engine(s, data=data, actor="bench")
            slos.set_slo(s, engine_id=row.id, slo=parse_slo("p99_s<=5"), actor="bench")
            engine_id = row.id
        guard = GuardService(sessions=sessions, policy=GUARD)
        rolled = threading.Event()

        def listen(event: GuardEvent) -> None:
            if event.kind == "health.rollback":
                rolled.set()

        guard.events.subscribe(listen)
        guard.start()
        service = SchedulerService(sessions, settings, guard=guard, holder="bench")
        service.register_source(HealthWatchSource(service, registry=None))
        service.start()
        while not service.is_leader:
            time.sleep(0.05)
        service.refresh()
        rows = []
        try:
            for run in range(args.runs):
                before = int(_config(engine)["max_batch_size"])  # type: ignore[call-overload]
                after = 4 if before == 8 else 8
                with sessions() as s, s.begin():
                    adapter = adapter_for(target)
                    try:
                        plan = propose(
                            s, engine=engines.get_engine(s, engine_id), adapter=adapter,
                            changes={"max_batch_size": after}, reason="manual",
                            actor="bench", bake_s=GUARD.bake_s,
                        )  # fmt: skip
                    finally:
                        adapter.close()
                assert plan.rollout_id is not None
                state = guard.submit(plan.rollout_id).result(timeout=60)
                assert state == RolloutState.committed, state
                while True:  # a passing check of the new change first
                    with sessions() as s:
                        w = health_watch.get_watch(s, engine_id)
                        if w and w.watched_rollout_id == plan.rollout_id and w.last_ok_at:
                            break
                    time.sleep(0.05)
                rolled.clear()
                t0 = time.monotonic()
                os.kill(engine.process.pid, signal.SIGSTOP)
                if not rolled.wait(60):
                    os.kill(engine.process.pid, signal.SIGCONT)
                    raise SystemExit("no health rollback within 60 s")
                t1 = time.monotonic()
                os.kill(engine.process.pid, signal.SIGCONT)
                while not _serves(engine, before):
                    time.sleep(0.02)
                t2 = time.monotonic()
                rows.append((run + 1, t1 - t0, t2 - t1, t2 - t0))
                print(
                    f"run {run + 1}: detected {t1 - t0:.2f} s, restored {t2 - t1:.2f} s later, "
                    f"LKG serving {t2 - t0:.2f} s after the failure",
                    flush=True,
                )
        finally:
            service.shutdown()
            guard.shutdown()
            if engine.process.poll() is None:
                os.kill(engine.process.pid, signal.SIGCONT)
            engine.stop()
            db.dispose()

    totals = sorted(r[3] for r in rows)
    p95 = totals[min(len(totals) - 1, round(0.95 * (len(totals) - 1)))]
    print()
    print(f"interval {args.interval:g} s, {args.failures} failures, {len(rows)} runs")
    print()
    print("| | failure -> rollback started | rollback -> LKG serving | failure -> LKG serving |")
    print("|---|---:|---:|---:|")
    for label, pick in (("median", statistics.median), ("max", max)):
        print(
            f"| {label} | {pick(r[1] for r in rows):.2f} s | {pick(r[2] for r in rows):.2f} s "
            f"| {pick(r[3] for r in rows):.2f} s |"
        )
    print(f"| p95 | | | {p95:.2f} s |")
    print()
    verdict = "met" if p95 <= goal else "MISSED"
    print(f"goal: p95 <= {args.interval:g} s x {args.failures} + 3 s = {goal:g} s: {verdict}")


if __name__ == "__main__":
    main()
