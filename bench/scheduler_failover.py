"""Scheduler failover: three real ``cplane up`` processes on one PostgreSQL; the leader is
killed with SIGKILL again and again. Per kill: time to the new leader taking the lease, and
to the new leader's first job run (``retention``, set to fire every second for the bench).
A killed process is replaced by a fresh one, so three always take part.

    python bench/scheduler_failover.py --kills 20            # default lease 5 s
    python bench/scheduler_failover.py --kills 20 --lease-s 1

Prints p50 / p95 of both and the goal (3 x lease). Needs PostgreSQL (CP_TEST_POSTGRES_URL or
the local server's ``test`` database, used only to create and drop a database of its own).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script, from anywhere

import httpx
from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.engine import make_url

from controlplane.settings import Settings
from controlplane.store import jobs
from controlplane.store import schema
from controlplane.store.database import make_engine
from controlplane.store.database import make_session_factory
from controlplane.store.models import JobRunRow

ADMIN_URL = os.environ.get(
    "CP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
CPLANE = shutil.which("cplane") or str(Path(sys.executable).parent / "cplane")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Plane:
    def __init__(self, env: dict[str, str]) -> None:
        self.port = _free_port()
        self.process = subprocess.Popen(
            [CPLANE, "up", "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).is_success:
                    return
            except httpx.TransportError:
                if self.process.poll() is not None:
                    raise RuntimeError("cplane up exited") from None
            time.sleep(0.1)
        raise RuntimeError("cplane up did not start")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _pid(holder: str | None) -> int | None:
    return None if holder is None else int(holder.split(":")[-2])


def _lease(engine: Engine) -> jobs.LeaseState | None:
    with make_session_factory(engine)() as s, s.begin():
        return jobs.lease_state(s)


def _first_run_after(engine: Engine, token: int) -> JobRunRow | None:
    with make_session_factory(engine)() as s, s.begin():
        return s.scalars(
            select(JobRunRow)
            .where(JobRunRow.job == "retention", JobRunRow.fence_token > token)
            .order_by(JobRunRow.started_at)
            .limit(1)
        ).first()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--lease-s", type=float, default=5.0)
    parser.add_argument("--json", type=Path, help="Also write the raw figures here.")
    args = parser.parse_args()

    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"cp_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    tmp = Path(tempfile.mkdtemp(prefix="cp-failover-"))
    planes: dict[int, Plane] = {}
    try:
        engine = make_engine(Settings(database_url=url, data_dir=tmp))
        schema.upgrade(engine)
        with make_session_factory(engine)() as s, s.begin():
            jobs.seed_jobs(s, [jobs.JobDefault("retention", "retention", 1.0)], actor="bench")
        counter = iter(range(1_000_000))

        def spawn() -> Plane:
            i = next(counter)
            env = {
                **os.environ,
                "CP_DATABASE_URL": url,
                "CP_DATA_DIR": str(tmp / f"cp{i}"),
                "CP_LOG_LEVEL": "WARNING",
                "CP_SCHEDULER__LEASE_S": str(args.lease_s),
            }
            plane = Plane(env)
            planes[plane.process.pid] = plane
            return plane

        for plane in [spawn() for _ in range(3)]:
            plane.wait_ready()
        to_lease: list[float] = []
        to_job: list[float] = []
        replacement: Plane | None = None
        for kill in range(args.kills):
            if replacement is not None:
                replacement.wait_ready()
            # Wait for a live leader that has run the job under its token.
            deadline = time.monotonic() + 10 * args.lease_s + 30
            while True:
                lease = _lease(engine)
                if lease is not None and _pid(lease.holder) in planes:
                    ran = _first_run_after(engine, lease.token - 1)
                    if ran is not None and ran.holder == lease.holder:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("no leader running jobs")
                time.sleep(0.05)
            leader = planes.pop(_pid(lease.holder) or -1)
            killed = time.time()
            leader.process.send_signal(signal.SIGKILL)
            leader.process.wait()
            replacement = spawn()  # starts while the others elect (as a supervisor would)
            leased = run = None
            while run is None:
                if leased is None:
                    now = _lease(engine)
                    if now is not None and now.token > lease.token and now.acquired_at:
                        leased = now.acquired_at.timestamp() - killed
                first = _first_run_after(engine, lease.token)
                if first is not None and first.started_at is not None:
                    run = first.started_at.timestamp() - killed
                if time.time() - killed > 10 * args.lease_s + 30:
                    raise RuntimeError("no new leader")
                time.sleep(0.02)
            to_lease.append(leased if leased is not None else run)
            to_job.append(run)
            print(
                f"kill {kill + 1}: lease taken after {to_lease[-1]:.2f} s, first job {run:.2f} s"
            )
        goal = 3 * args.lease_s
        summary = {
            "lease_s": args.lease_s,
            "kills": args.kills,
            "to_lease_p50_s": round(statistics.median(to_lease), 2),
            "to_lease_p95_s": round(_pct(to_lease, 0.95), 2),
            "to_first_job_p50_s": round(statistics.median(to_job), 2),
            "to_first_job_p95_s": round(_pct(to_job, 0.95), 2),
            "to_first_job_max_s": round(max(to_job), 2),
            "goal_s": goal,
        }
        print(json.dumps(summary, indent=2))
        if args.json:
            args.json.write_text(json.dumps({**summary, "to_lease": to_lease, "to_job": to_job}))
        engine.dispose()
    finally:
        for plane in planes.values():
            plane.stop()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
