"""On-call paging through a real ``cplane up`` (SQLite store, its leader's escalation and
sender jobs) to the local PagerDuty Events v2 receiver (the contract of PagerDuty's service,
which cannot run here), fed over the Alertmanager webhook.

    python bench/oncall/paging.py [--latency 50] [--storm 10000] [--groups 50] [--flaky 200]

1. Arrival to first notification handed to the channel: one new alert group at a time,
   from the webhook POST to the receiver getting its trigger; p50 / p95 / max.
2. Storm: ``--storm`` alerts in ``--groups`` groups (Alertmanager sends each group's alerts
   together, 100 per delivery, four deliveries in flight): ingest time, incidents opened,
   pages sent (goal: one per group), alerts stored (nothing lost).
3. Delivery with a receiver failing 30 % of requests (HTTP 500): ``--flaky`` incidents,
   pages lost, duplicate PagerDuty alerts, requests and time until the outbox is empty.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func
from sqlalchemy import select

from controlplane.domain import Role
from controlplane.oncall.receivers import Faults
from controlplane.oncall.receivers import PagerDutyReceiver
from controlplane.schemas.oncall import ContactMethodCreate
from controlplane.schemas.oncall import NotificationRuleCreate
from controlplane.schemas.oncall import PolicyCreate
from controlplane.schemas.oncall import RouteCreate
from controlplane.schemas.oncall import ScheduleCreate
from controlplane.settings import Settings
from controlplane.store import oncall
from controlplane.store import users
from controlplane.store.database import make_engine
from controlplane.store.database import make_session_factory
from controlplane.store.database import unit_of_work
from controlplane.store.models import AlertRow
from controlplane.store.models import NotificationRow

CPLANE = shutil.which("cplane") or str(Path(sys.executable).parent / "cplane")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Plane:
    def __init__(self, data: Path, receiver: PagerDutyReceiver, **extra: str) -> None:
        self.data = data
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CP_")},
            "CP_DATA_DIR": str(data),
            "CP_ONCALL__PAGERDUTY_URL": receiver.url,
            "CP_LOG_LEVEL": "WARNING",
            **extra,
        }
        subprocess.run([CPLANE, "db", "upgrade"], env=self.env, check=True, capture_output=True)
        engine = make_engine(Settings(data_dir=data))
        with unit_of_work(make_session_factory(engine)) as s:
            users.create_user(s, name="alice", role=Role.operator, actor="bench")
            oncall.add_contact_method(
                s,
                user="alice",
                body=ContactMethodCreate.model_validate(
                    {"name": "pd", "kind": "pagerduty", "routing_key": "k" * 32}
                ),
                actor="bench",
            )
            oncall.add_notification_rule(
                s, user="alice", body=NotificationRuleCreate(contact_method="pd"), actor="bench"
            )
            oncall.create_schedule(
                s,
                ScheduleCreate.model_validate(
                    {
                        "name": "primary",
                        "layers": [
                            {
                                "name": "all",
                                "kind": "weekly",
                                "start": "2026-01-05T09:00:00",
                                "participants": ["alice"],
                            }
                        ],
                    }
                ),
                actor="bench",
            )
            oncall.create_policy(
                s,
                PolicyCreate.model_validate(
                    {
                        "name": "p",
                        "steps": [{"targets": [{"kind": "schedule", "ref": "primary"}]}],
                    }
                ),
                actor="bench",
            )
            oncall.create_route(s, RouteCreate(name="all", policy="p"), actor="bench")
            am = users.create_user(s, name="am", role=Role.operator, actor="bench")
            _row, token = users.create_token(s, user=am, name="am", ttl=None, actor="bench")
        self.engine = engine
        self.headers = {"Authorization": f"Bearer {token}"}
        self.process = subprocess.Popen(
            [CPLANE, "up", "--port", str(self.port)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("cplane up did not start")
            time.sleep(0.1)
        self.client = httpx.Client(base_url=self.url, headers=self.headers, timeout=60)

    def post(self, alerts: list[dict[str, Any]]) -> None:
        body = {
            "version": "4",
            "groupKey": "{}:{}",
            "status": "firing",
            "receiver": "cplane",
            "groupLabels": {},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://am",
            "alerts": alerts,
        }
        response = self.client.post("/api/v1/alerts/alertmanager", json=body)
        response.raise_for_status()

    def count(self, query: Any) -> int:
        with make_session_factory(self.engine)() as s:
            return int(s.scalar(query) or 0)

    def close(self) -> None:
        self.client.close()
        self.process.terminate()
        self.process.wait(30)
        self.engine.dispose()


def alert(fingerprint: str, group: int, instance: int = 0) -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": {
            "alertname": f"EngineHighP99Latency{group}",
            "engine": "llm-a",
            "severity": "critical",
            "instance": f"node-{instance}",
        },
        "annotations": {"summary": "p99 above SLO", "slo": "p99 < 500 ms", "observed": "812 ms"},
        "startsAt": "2026-12-01T12:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": fingerprint,
    }


def wait_for(predicate: Any, timeout: float) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            return float("nan")
        time.sleep(0.01)
    return time.monotonic() - start


def latency(n: int, tmp: Path) -> None:
    receiver = PagerDutyReceiver().start()
    plane = Plane(tmp / "latency", receiver)
    try:
        samples = []
        for i in range(n):
            before = len(receiver.first_seen)
            start = time.monotonic()
            plane.post([alert(f"a{i:06x}", i)])
            wait_for(lambda b=before: len(receiver.first_seen) > b, 30)
            samples.append(max(receiver.first_seen.values()) - start)
            time.sleep(0.05)
    finally:
        plane.close()
        receiver.stop()
    q = statistics.quantiles(samples, n=20, method="inclusive")
    print(
        f"arrival -> first notification, {n} incidents: p50 {statistics.median(samples):.3f} s, "
        f"p95 {q[18]:.3f} s, max {max(samples):.3f} s"
    )


def storm(total: int, groups: int, tmp: Path) -> None:
    receiver = PagerDutyReceiver().start()
    plane = Plane(tmp / "storm", receiver)
    per_group = total // groups
    batches = []
    for g in range(groups):
        members = [alert(f"{g:04x}{i:06x}", g, i) for i in range(per_group)]
        batches += [members[i : i + 100] for i in range(0, per_group, 100)]
    try:
        start = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(plane.post, batches))
        ingest = time.monotonic() - start
        wait_for(lambda: len(receiver.first_seen) >= groups, 60)
        time.sleep(2)  # anything more would show up now
        stored = plane.count(select(func.count()).select_from(AlertRow))
        outbox = plane.count(select(func.count()).select_from(NotificationRow))
        incidents = len(plane.client.get("/api/v1/incidents?limit=1000").json())
    finally:
        plane.close()
        receiver.stop()
    print(
        f"storm: {total} alerts in {len(batches)} deliveries ingested in {ingest:.1f} s "
        f"({total / ingest:.0f} alerts/s); {stored} stored; {incidents} incidents; "
        f"{outbox} outbox rows; PagerDuty alerts opened {len(receiver.opened)}, "
        f"events {len(receiver.events)}"
    )


def flaky(n: int, tmp: Path) -> None:
    receiver = PagerDutyReceiver(Faults(fail_rate=0.3, seed=1)).start()
    plane = Plane(
        tmp / "flaky", receiver, CP_ONCALL__RETRY_BASE_S="0.5", CP_ONCALL__RETRY_CAP_S="5"
    )
    try:
        start = time.monotonic()
        for i in range(n):
            plane.post([alert(f"f{i:06x}", i)])
        drained = wait_for(
            lambda: (
                plane.count(
                    select(func.count())
                    .select_from(NotificationRow)
                    .where(NotificationRow.state.in_(["pending", "sending"]))
                )
                == 0
                and len(receiver.first_seen) >= n
            ),
            300,
        )
        elapsed = time.monotonic() - start
        sent = plane.count(
            select(func.count())
            .select_from(NotificationRow)
            .where(NotificationRow.state == "sent")
        )
        failed = plane.count(
            select(func.count())
            .select_from(NotificationRow)
            .where(NotificationRow.state == "failed")
        )
    finally:
        plane.close()
        receiver.stop()
    duplicates = sum(v - 1 for v in receiver.opened.values())
    print(
        f"30 % failing receiver, {n} incidents: {sent} sent, {failed} failed, "
        f"{n - len(receiver.opened)} lost, {duplicates} duplicate PagerDuty alerts; "
        f"{receiver.requests} requests ({receiver.statuses[500]} answered 500); outbox empty "
        f"{drained:.1f} s after the last alert ({elapsed:.1f} s in all)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=int, default=50)
    parser.add_argument("--storm", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=50)
    parser.add_argument("--flaky", type=int, default=200)
    args = parser.parse_args()
    print(f"load: {os.getloadavg()[0]:.1f} (1 min), {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        if args.latency:
            latency(args.latency, Path(tmp))
        if args.storm:
            storm(args.storm, args.groups, Path(tmp))
        if args.flaky:
            flaky(args.flaky, Path(tmp))


if __name__ == "__main__":
    main()
