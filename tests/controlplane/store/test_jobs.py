"""Scheduler state on both backends: lease takeover raises the fencing token, a stale fence
refuses every job write, one run per firing, and job definitions keep their edits."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from controlplane.domain import Fence
from controlplane.domain import FencedOutError
from controlplane.domain import IllegalTransitionError
from controlplane.domain import JobRunState
from controlplane.domain import NotFoundError
from controlplane.store import audit
from controlplane.store import jobs
from controlplane.store.database import make_session_factory

T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
LEASE = jobs.LEADER_LEASE


def _acquire(session: Session, holder: str, now: datetime, lease_s: float = 5.0) -> int | None:
    with session.begin():
        return jobs.acquire_or_renew(session, LEASE, holder, lease_s, now)


def test_lease_is_held_renewed_and_taken_over_with_a_new_token(session: Session) -> None:
    assert _acquire(session, "a", T0) == 1
    assert _acquire(session, "b", T0 + timedelta(seconds=1)) is None
    assert _acquire(session, "a", T0 + timedelta(seconds=4)) == 1  # renewal keeps the token
    assert _acquire(session, "b", T0 + timedelta(seconds=8)) is None  # renewed until 9 s
    assert _acquire(session, "b", T0 + timedelta(seconds=9)) == 2  # expired: taken, +1
    assert _acquire(session, "a", T0 + timedelta(seconds=10)) is None
    with session.begin():
        assert jobs.release(session, LEASE, "a") is False
        assert jobs.release(session, LEASE, "b") is True
    assert _acquire(session, "a", T0 + timedelta(seconds=10)) == 3  # released: free at once
    with session.begin():
        state = jobs.lease_state(session)
    assert state is not None and (state.holder, state.token) == ("a", 3)


def test_a_stale_fence_refuses_every_job_write(session: Session) -> None:
    old = Fence(LEASE, "a", _acquire(session, "a", T0) or 0)
    with session.begin():
        run = jobs.start_run(session, job="retention", scheduled_for=T0, fence=old)
    assert run is not None
    new = Fence(LEASE, "b", _acquire(session, "b", T0 + timedelta(seconds=6)) or 0)
    assert new.token == old.token + 1
    later = T0 + timedelta(minutes=1)
    with pytest.raises(FencedOutError, match="no longer held by a"), session.begin():
        jobs.start_run(session, job="retention", scheduled_for=later, fence=old)
    with pytest.raises(FencedOutError), session.begin():
        jobs.skip_run(session, job="retention", scheduled_for=later, fence=old, reason="x")
    with pytest.raises(FencedOutError), session.begin():
        jobs.finish_run(session, run, JobRunState.done)  # the fence it was started under
    with session.begin():
        assert jobs.get_run(session, run.id).state == "started"
        assert jobs.list_runs(session, job="retention") == [run]
        assert jobs.start_run(session, job="retention", scheduled_for=later, fence=new)


def test_one_run_per_firing_whoever_fires_it(session: Session) -> None:
    fence = Fence(LEASE, "a", _acquire(session, "a", T0) or 0)
    with session.begin():
        first = jobs.start_run(
            session, job="schedule:7", scheduled_for=T0, fence=fence, detail={"n": 1}
        )
        again = jobs.start_run(session, job="schedule:7", scheduled_for=T0, fence=fence)
        skipped = jobs.skip_run(
            session, job="schedule:7", scheduled_for=T0, fence=fence, reason="engine_busy"
        )
    assert first is not None and again is None and skipped is None
    with session.begin():
        done = jobs.finish_run(session, first, JobRunState.done, detail={"m": 2})
    assert (done.state, done.detail, done.finished_at is not None) == (
        "done",
        {"n": 1, "m": 2},
        True,
    )
    with pytest.raises(IllegalTransitionError), session.begin():
        jobs.finish_run(session, done, JobRunState.failed)
    with session.begin():
        events = audit.list_events(session, target_type="job_run")
    assert [e.action for e in events] == ["job_run.done"]


def test_skips_and_failures_are_recorded_and_the_latest_run_per_job_found(
    session: Session,
) -> None:
    fence = Fence(LEASE, "a", _acquire(session, "a", T0) or 0)
    with session.begin():
        for i in range(3):
            run = jobs.start_run(
                session, job="sweep", scheduled_for=T0 + timedelta(minutes=i), fence=fence
            )
            assert run is not None
            jobs.finish_run(
                session,
                run,
                JobRunState.done if i < 2 else JobRunState.failed,
                error=None if i < 2 else "boom",
            )
        skipped = jobs.skip_run(
            session, job="schedule:1", scheduled_for=T0, fence=fence, reason="engine_busy"
        )
        jobs.start_run(session, job="chaos_sweep@h1", scheduled_for=T0, fence=None)
        jobs.start_run(session, job="chaos_sweep@h2", scheduled_for=T0, fence=None)
    assert skipped is not None and (skipped.state, skipped.reason) == ("skipped", "engine_busy")
    with session.begin():
        last = jobs.last_runs(session)
        ok = jobs.last_runs(session, jobs=["sweep"], state=JobRunState.done)
        everywhere = jobs.list_runs(session, job="chaos_sweep@")
        history = jobs.list_runs(session, job="sweep", limit=2)
    assert (last["sweep"].state, last["sweep"].error) == ("failed", "boom")
    assert ok["sweep"].scheduled_for == T0 + timedelta(minutes=1)
    assert {r.job for r in everywhere} == {"chaos_sweep@h1", "chaos_sweep@h2"}
    assert [r.scheduled_for for r in history] == [
        T0 + timedelta(minutes=2),
        T0 + timedelta(minutes=1),
    ]


def test_job_definitions_are_seeded_once_and_keep_their_edits(session: Session) -> None:
    defaults = [jobs.JobDefault("retention", "retention", 300.0)]
    with session.begin():
        assert jobs.seed_jobs(session, defaults, actor="system") == ["retention"]
        before = jobs.jobs_version(session)
    with session.begin():
        jobs.update_job(session, "retention", actor="user:op", interval_s=60.0, enabled=False)
    with session.begin():
        assert jobs.seed_jobs(session, defaults, actor="system") == []
        row = jobs.get_job(session, "retention")
        after = jobs.jobs_version(session)
        events = audit.list_events(session, target_type="job")
    assert (row.interval_s, row.enabled, row.updated_by) == (60.0, False, "user:op")
    assert after != before
    assert events[0].detail == {
        "interval_s": {"from": 300.0, "to": 60.0},
        "enabled": {"from": True, "to": False},
    }
    with pytest.raises(NotFoundError, match="known: retention"), session.begin():
        jobs.get_job(session, "nope")


def test_two_takers_of_an_expired_lease_get_one_token_each_at_most(db_engine: Engine) -> None:
    factory = make_session_factory(db_engine)
    with factory() as s:
        assert _acquire(s, "a", T0) == 1
    later = T0 + timedelta(seconds=30)
    with factory() as s1, factory() as s2:
        got = [_acquire(s1, "b", later), _acquire(s2, "c", later)]
    assert sorted(got, key=str) == [2, None]
