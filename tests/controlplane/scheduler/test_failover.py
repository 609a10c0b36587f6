"""Three real ``cplane up`` processes on one PostgreSQL: exactly one leads, the leader killed
with SIGKILL is replaced within ``lease_s`` x 3, a counted job (``retention`` every second)
is recorded once per firing under ever-increasing fencing tokens, and a write made with the
dead leader's fence is refused."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import datetime
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy import select

from controlplane.domain import Fence
from controlplane.domain import FencedOutError
from controlplane.settings import Settings
from controlplane.store import jobs
from controlplane.store import schema
from controlplane.store.database import make_engine
from controlplane.store.database import make_session_factory
from controlplane.store.models import JobRunRow
from tests.fixtures.cli import ControlPlane
from tests.fixtures.db import DatabaseFactory
from tests.fixtures.engines import free_port

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

LEASE_S = 1.0


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    factory = DatabaseFactory("postgresql", tmp_path)
    url = factory.new_url()
    engine = make_engine(Settings(database_url=url, data_dir=tmp_path))
    schema.upgrade(engine)
    yield url, engine
    engine.dispose()
    factory.close()


def _lease(engine: Engine) -> jobs.LeaseState | None:
    with make_session_factory(engine)() as s, s.begin():
        return jobs.lease_state(s)


def _pid(holder: str | None) -> int | None:
    return None if holder is None else int(holder.split(":")[-2])


def _wait_for(condition: object, timeout_s: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if condition():  # type: ignore[operator]
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def _ran_as(engine: Engine, holder: str) -> bool:
    return any(r.holder == holder for r in _runs(engine))


def _runs(engine: Engine) -> list[JobRunRow]:
    with make_session_factory(engine)() as s, s.begin():
        return list(
            s.scalars(
                select(JobRunRow)
                .where(JobRunRow.job == "retention")
                .order_by(JobRunRow.scheduled_for)
            )
        )


def test_one_leader_among_three_through_sigkills(pg: tuple[str, Engine], tmp_path: Path) -> None:
    url, engine = pg
    with make_session_factory(engine)() as s, s.begin():
        jobs.seed_jobs(s, [jobs.JobDefault("retention", "retention", 1.0)], actor="test")
    planes: dict[int, ControlPlane] = {}

    def start(i: int) -> ControlPlane:
        env = {
            **os.environ,
            "CP_DATABASE_URL": url,
            "CP_DATA_DIR": str(tmp_path / f"cp{i}"),
            "CP_LOG_LEVEL": "WARNING",
            "CP_SCHEDULER__LEASE_S": str(LEASE_S),
            "CP_SCHEDULER__REFRESH_S": "1",
        }
        plane = ControlPlane(env, free_port())
        plane.start()
        assert plane.process is not None
        planes[plane.process.pid] = plane
        return plane

    try:
        for i in range(3):
            start(i)
        takeovers: list[float] = []
        for kill in range(2):
            _wait_for(
                lambda: (lease := _lease(engine)) is not None and _pid(lease.holder) in planes,
                10,
                "a leader",
            )
            lease = _lease(engine)
            assert lease is not None and lease.holder is not None
            old = Fence(jobs.LEADER_LEASE, lease.holder, lease.token)
            _wait_for(partial(_ran_as, engine, old.holder), 10, "a run of the leader")
            leader = planes.pop(_pid(old.holder) or -1)
            leader.kill()
            killed_at = time.monotonic()

            def new_leader_ran(old: Fence = old) -> bool:
                return any(
                    r.fence_token is not None
                    and r.fence_token > old.token
                    and _pid(r.holder) in planes
                    for r in _runs(engine)
                )

            _wait_for(new_leader_ran, LEASE_S * 3 + 2, "the new leader's first run")
            lease = _lease(engine)
            assert lease is not None and _pid(lease.holder) in planes
            takeovers.append(time.monotonic() - killed_at)
            # The dead leader's fence is refused: a late write of its cannot land.
            with pytest.raises(FencedOutError), make_session_factory(engine)() as s, s.begin():
                jobs.start_run(
                    s, job="retention", scheduled_for=datetime.now().astimezone(), fence=old
                )
            start(3 + kill)  # back to three processes
        time.sleep(2)
    finally:
        for plane in planes.values():
            plane.stop()

    runs = _runs(engine)
    times = [r.scheduled_for for r in runs]
    assert len(times) == len(set(times))  # once per firing
    # Fencing: a later firing never carries an older token, one token has one holder, and
    # every firing is on the 1 s grid.
    tokens = [r.fence_token or 0 for r in runs]
    assert tokens == sorted(tokens)
    holders: dict[int, str | None] = {}
    for r in runs:
        assert holders.setdefault(r.fence_token or 0, r.holder) == r.holder
        assert r.scheduled_for.timestamp() % 1 == 0
        assert r.state == "done"
    assert len(holders) >= 3  # the first leader and two successors
    # The job kept firing: every grid second has a run, except around the two failovers.
    span = int((times[-1] - times[0]).total_seconds()) + 1
    missing = span - len(times)
    assert missing <= 2 * (LEASE_S * 3 + 1), (missing, span)
    assert all(t <= LEASE_S * 3 for t in takeovers), takeovers
