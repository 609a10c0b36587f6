"""The lease helper: it stamps in its own thread and transaction, tells its owner to stop
once when the stamp says so, survives a failed stamp, and ``stop`` leaves no thread behind."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy import Engine
from sqlalchemy import text
from sqlalchemy.orm import Session

from controlplane.store.database import make_session_factory
from controlplane.store.leases import Lease


def _until(predicate: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


class _Stamps:
    """Counts stamps; from ``stop_after`` on, asks the owner to stop; ``fail_at`` raises."""

    def __init__(self, *, stop_after: int | None = None, fail_at: int | None = None) -> None:
        self.count = 0
        self.threads: set[str] = set()
        self.stop_after = stop_after
        self.fail_at = fail_at

    def __call__(self, session: Session) -> bool:
        session.execute(text("SELECT 1"))  # a real transaction of its own
        self.count += 1
        self.threads.add(threading.current_thread().name)
        if self.count == self.fail_at:
            raise RuntimeError("store hiccup")
        return self.stop_after is None or self.count < self.stop_after


def test_stamps_every_period_in_its_own_thread_until_stopped(db_engine: Engine) -> None:
    stamps = _Stamps()
    lease = Lease(make_session_factory(db_engine), stamps, every_s=0.01, name="lease-t")
    lease.start()
    _until(lambda: stamps.count >= 3, "three stamps")
    lease.stop()
    after = stamps.count
    assert not any(t.name == "lease-t" for t in threading.enumerate())
    time.sleep(0.05)
    assert stamps.count == after
    assert stamps.threads == {"lease-t"}


def test_stamp_at_start_runs_in_the_callers_thread_and_raises_there(db_engine: Engine) -> None:
    idle = _Stamps()
    with Lease(make_session_factory(db_engine), idle, every_s=60, name="l0"):
        assert idle.count == 0  # no stamp at start unless asked for
    stamps = _Stamps()
    with Lease(make_session_factory(db_engine), stamps, every_s=60, name="l", stamp_at_start=True):
        assert stamps.count == 1
        assert stamps.threads == {threading.current_thread().name}
    failing = Lease(
        make_session_factory(db_engine),
        _Stamps(fail_at=1),
        every_s=60,
        name="l2",
        stamp_at_start=True,
    )
    with pytest.raises(RuntimeError, match="hiccup"):
        failing.start()


def test_on_stop_is_called_once_and_stamping_goes_on(db_engine: Engine) -> None:
    stamps = _Stamps(stop_after=2)
    told: list[str] = []
    lease = Lease(
        make_session_factory(db_engine),
        stamps,
        every_s=0.01,
        name="lease-s",
        on_stop=lambda: told.append(threading.current_thread().name),
    )
    with lease:
        _until(lambda: stamps.count >= 5, "stamps after the stop request")
    assert told == ["lease-s"]


def test_a_failed_stamp_is_counted_and_retried(db_engine: Engine) -> None:
    stamps = _Stamps(fail_at=2)
    lease = Lease(make_session_factory(db_engine), stamps, every_s=0.01, name="lease-f")
    with lease:
        _until(lambda: stamps.count >= 4, "stamps after a failure")
    assert lease.failures == 1
