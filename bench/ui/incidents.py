"""Server time of the alerts page with its incidents, and of the fragment it polls.

    python bench/ui/incidents.py [--incidents 500] [--runs 20]

A fresh SQLite store with one schedule and policy paging one person by email, and
``--incidents`` alerts raised through the store's own function, each in its own group, so
each opens an incident whose first escalation step wrote an outbox row (the "paged" column
reads them). The real app serves the page in process (ASGI test client), signed in through
the sign-in form. Median and 95th percentile over ``--runs``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from controlplane.api.app import create_app
from controlplane.domain import Role
from controlplane.domain.alerts import AlertSource
from controlplane.schemas.oncall import ContactMethodCreate
from controlplane.schemas.oncall import PolicyCreate
from controlplane.schemas.oncall import RouteCreate
from controlplane.schemas.oncall import ScheduleCreate
from controlplane.settings import Settings
from controlplane.store import alerts
from controlplane.store import oncall
from controlplane.store import schema
from controlplane.store import users
from controlplane.store.database import make_engine
from controlplane.store.database import make_session_factory
from controlplane.store.database import unit_of_work


def seed(settings: Settings, n: int) -> str:
    db = make_engine(settings)
    schema.upgrade(db)
    now = datetime.now(UTC)
    with unit_of_work(make_session_factory(db)) as s:
        user = users.create_user(s, name="bench", role=Role.operator, actor="bench")
        _row, token = users.create_token(s, user=user, name="bench", ttl=None, actor="bench")
        oncall.add_contact_method(
            s,
            user="bench",
            body=ContactMethodCreate(name="mail", kind="email", address="bench@example.com"),
            actor="bench",
        )
        layer = {"name": "w", "kind": "weekly", "start": "2026-01-05T09:00:00"}
        oncall.create_schedule(
            s,
            ScheduleCreate.model_validate(
                {"name": "primary", "layers": [{**layer, "participants": ["bench"]}]}
            ),
            actor="bench",
        )
        oncall.create_policy(
            s,
            PolicyCreate.model_validate(
                {"name": "p", "steps": [{"targets": [{"kind": "schedule", "ref": "primary"}]}]}
            ),
            actor="bench",
        )
        oncall.create_route(s, RouteCreate(name="all", policy="p"), actor="bench")
    for start in range(0, n, 100):
        with unit_of_work(make_session_factory(db)) as s:
            for i in range(start, min(n, start + 100)):
                alerts.raise_alert(
                    s,
                    alerts.RaisedAlert(
                        fingerprint=f"fp-{i}",
                        alertname="EngineHighP99Latency",
                        source=AlertSource.detector,
                        engine_id=None,
                        labels={"alertname": "EngineHighP99Latency", "engine": f"llm-{i:04d}"},
                        annotations={"summary": "p99 above its SLO"},
                    ),
                    actor="bench",
                    now=now - timedelta(seconds=n - i),
                )
    db.dispose()
    return token


def timed(fn: Callable[[], httpx.Response], runs: int) -> tuple[float, float, httpx.Response]:
    fn()
    times = []
    response = None
    for _ in range(runs):
        t0 = time.perf_counter()
        response = fn()
        times.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, response.text[:300]
    times.sort()
    assert response is not None
    return statistics.median(times), times[min(len(times) - 1, int(0.95 * len(times)))], response


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=500)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        t0 = time.perf_counter()
        token = seed(settings, args.incidents)
        print(f"seeded {args.incidents} open incidents in {time.perf_counter() - t0:.0f} s")
        with TestClient(create_app(settings), follow_redirects=False) as client:
            signed = client.post("/ui/sign-in", data={"name": "bench", "token": token})
            assert signed.status_code == 303
            for path in ("/ui/alerts", "/ui/alerts/incidents"):
                med, p95, page = timed(lambda path=path: client.get(path), args.runs)
                rows = page.text.count("data-incident-id=")
                print(
                    f"{path}: {rows} incident rows, {med:.0f} ms median, {p95:.0f} ms p95, "
                    f"{len(page.content) / 1024:.0f} KiB"
                )


if __name__ == "__main__":
    main()
