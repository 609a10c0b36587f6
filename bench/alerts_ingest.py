"""Alert ingest and the leak detector.

    python bench/alerts_ingest.py [--groups 40] [--size 100] [--postgres URL] [--seeds 20]

1. Webhook ingest through the real app (``POST /api/v1/alerts/alertmanager`` over the ASGI
   test client, operator token, pydantic parsing included), on SQLite and PostgreSQL: each of
   ``--groups`` deliveries carries ``--size`` alerts; they are sent new (insert), again
   unchanged (Alertmanager's repeats and retries: dedup), and resolved (a state change per
   alert, audited). Alerts/s per phase.
2. Leak detector on synthetic series (100 req/s, a sample every 15 s, 0.3 % noise, a fit every
   60 s over the default settings): requests until a leak of 12 % (and 20 %) per 100k
   requests is flagged, over ``--seeds`` seeds; and false alarms over a long leak-free run
   with a config switch (memory step) every 8 h and a restart every day, fitted every 10 min.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlalchemy import make_url
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controlplane.api.app import create_app  # noqa: E402
from controlplane.domain import Role  # noqa: E402
from controlplane.scheduler.detectors import leak  # noqa: E402
from controlplane.settings import CollectorSettings  # noqa: E402
from controlplane.settings import DetectorSettings  # noqa: E402
from controlplane.settings import SchedulerSettings  # noqa: E402
from controlplane.settings import Settings  # noqa: E402
from controlplane.store import schema  # noqa: E402
from controlplane.store import users  # noqa: E402
from controlplane.store.database import make_engine  # noqa: E402
from controlplane.store.database import make_session_factory  # noqa: E402
from controlplane.store.database import unit_of_work  # noqa: E402
from tests.fixtures.synthetic_series import generate  # noqa: E402

HOUR = 3600.0


def _message(group: int, size: int, status: str) -> dict[str, Any]:
    alerts = []
    for i in range(size):
        alerts.append(
            {
                "status": status,
                "labels": {
                    "alertname": "EngineHighP99Latency",
                    "engine": f"engine-{group}-{i}",
                    "severity": "critical",
                },
                "annotations": {"summary": "p99 above 500 ms", "description": f"value {i}"},
                "startsAt": "2026-12-01T12:00:00Z",
                "endsAt": "2026-12-01T12:30:00Z"
                if status == "resolved"
                else "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph",
                "fingerprint": f"{group:06x}{i:06x}",
            }
        )
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="EngineHighP99Latency", group="{group}"}}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "controlplane",
        "groupLabels": {"alertname": "EngineHighP99Latency"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": alerts,
    }


def ingest(url: str, groups: int, size: int) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp())
    # The scheduler and collectors stay off: their threads would compete with the figure.
    settings = Settings(
        database_url=url,
        data_dir=tmp,
        scheduler=SchedulerSettings(enabled=False),
        collectors=CollectorSettings(enabled=False),
    )
    engine = make_engine(settings)
    schema.upgrade(engine)
    with unit_of_work(make_session_factory(engine)) as s:
        user = users.create_user(s, name="alertmanager", role=Role.operator, actor="bench")
        _row, secret = users.create_token(s, user=user, name="am", ttl=None, actor="bench")
    headers = {"Authorization": f"Bearer {secret}"}
    out: dict[str, float] = {}
    app = create_app(settings, db_engine=engine)
    with TestClient(app) as client:
        for phase, status in (("new", "firing"), ("repeat", "firing"), ("resolve", "resolved")):
            bodies = [_message(g, size, status) for g in range(groups)]
            started = time.perf_counter()
            for body in bodies:
                response = client.post("/api/v1/alerts/alertmanager", json=body, headers=headers)
                assert response.status_code == 200, response.text
            out[phase] = groups * size / (time.perf_counter() - started)
    engine.dispose()
    return out


def postgres_url(admin_url: str) -> tuple[str, Callable[[], None]]:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"cp_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(admin_url).set(database=name).render_as_string(hide_password=False), drop


def _judge(series: Any, end: float, policy: DetectorSettings) -> tuple[bool, float]:
    start = end - policy.leak_window_s
    memory = [p for p in series.memory if start <= p[0] <= end]
    counter = [p for p in series.counter if start <= p[0] <= end]
    changes = [c for c in series.changes if start <= c <= end]
    t0 = time.perf_counter()
    verdict = leak(
        memory,
        counter,
        changes=changes,
        threshold=policy.leak_threshold,
        min_requests=policy.leak_min_requests,
        min_points=policy.leak_min_points,
        step_fraction=policy.leak_step_fraction,
    )
    return verdict.leaking, time.perf_counter() - t0


def requests_to_flag(rate: float, seeds: int, policy: DetectorSettings) -> list[float]:
    found = []
    for seed in range(seeds):
        series = generate(seconds=8 * HOUR, leak_per_100k=rate, seed=seed)
        t0 = series.counter[0][0]
        flagged = None
        for k in range(1, int(8 * HOUR / 60)):
            end = t0 + k * 60
            if _judge(series, end, policy)[0]:
                flagged = next(v for t, v in series.counter if t >= end - 15)
                break
        found.append(flagged if flagged is not None else float("inf"))
    return found


def false_alarms(days: float, policy: DetectorSettings) -> tuple[int, int, float]:
    evaluations = alarms = 0
    cost = 0.0
    seconds_per_day = 24 * HOUR
    for day in range(int(days)):
        # A restart at each day's start; a switch (+8 % memory at once) every 8 hours.
        for part in range(3):
            series = generate(
                seconds=8 * HOUR,
                switch_at=4 * HOUR,
                switch_step=0.08,
                seed=day * 3 + part,
                start=1.8e9 + day * seconds_per_day + part * 8 * HOUR,
            )
            t0 = series.counter[0][0]
            for k in range(1, int(8 * HOUR / 600) + 1):
                leaking, took = _judge(series, t0 + k * 600, policy)
                evaluations += 1
                alarms += leaking
                cost += took
    return evaluations, alarms, cost / max(evaluations, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--groups", type=int, default=40)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--days", type=float, default=7)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()

    results = {
        "sqlite": ingest(f"sqlite:///{Path(tempfile.mkdtemp()) / 'b.db'}", args.groups, args.size)
    }
    pg_url, drop = postgres_url(args.postgres)
    try:
        results["postgresql"] = ingest(pg_url, args.groups, args.size)
    finally:
        drop()
    print(f"webhook ingest, {args.groups} deliveries x {args.size} alerts (alerts/s)")
    print(f"{'backend':<12}{'new':>10}{'repeat':>10}{'resolve':>10}")
    for backend, r in results.items():
        print(f"{backend:<12}{r['new']:>10,.0f}{r['repeat']:>10,.0f}{r['resolve']:>10,.0f}")

    policy = DetectorSettings()
    print(f"\nleak detector, threshold {policy.leak_threshold:.0%} per 100k requests")
    for rate in (0.12, 0.20):
        found = requests_to_flag(rate, args.seeds, policy)
        missed = sum(1 for f in found if f == float("inf"))
        hits = sorted(f for f in found if f != float("inf"))
        median = statistics.median(hits) if hits else float("nan")
        worst = hits[-1] if hits else float("nan")
        print(
            f"leak {rate:.0%}/100k: flagged in {len(hits)}/{len(found)} runs within 8 h "
            f"(800k+ requests); requests to flag: median {median:,.0f}, max {worst:,.0f}"
            + (f"; {missed} not flagged" if missed else "")
        )
    evaluations, alarms, cost = false_alarms(args.days, policy)
    print(
        f"no leak, {args.days:g} days (restart daily, +8 % switch every 8 h): "
        f"{alarms} false alarms in {evaluations} fits; {cost * 1000:.1f} ms per fit"
    )


if __name__ == "__main__":
    main()
