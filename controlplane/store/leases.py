"""One lease helper: a thread that stamps a row every few seconds while its owner works.

A row with a fresh stamp has a live owner; a sweep takes over only rows whose stamp has gone
stale. The stamp itself is the caller's (a heartbeat column, a tuning run's ``updated``, a
leader row's expiry): this helper owns only the thread, the period and the stop. The stamp
returns ``False`` to say the owner should stop (an operator asked another process to
stop it, or the lease was lost); ``on_stop`` is then called once from the lease's thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.orm import Session

from controlplane.store.database import SessionFactory

log = logging.getLogger("controlplane.store")

Stamp = Callable[[Session], bool]


class Lease:
    def __init__(
        self,
        sessions: SessionFactory,
        stamp: Stamp,
        *,
        every_s: float,
        name: str,
        on_stop: Callable[[], None] | None = None,
        stamp_at_start: bool = False,
    ) -> None:
        self._sessions = sessions
        self._stamp = stamp
        self._every = every_s
        self._on_stop = on_stop
        self._stamp_at_start = stamp_at_start
        self._done = threading.Event()
        self._told = False
        self.failures = 0
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        """Start stamping. With ``stamp_at_start`` the first stamp runs here, in the caller's
        thread, so the row is fresh before the work begins (and a failure raises)."""
        if self._stamp_at_start:
            self._beat()
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._done.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=timeout_s)

    def __enter__(self) -> Lease:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self._done.wait(self._every):
            try:
                self._beat()
            except Exception:  # noqa: BLE001 - a missed stamp is retried next period
                self.failures += 1
                log.debug("lease %s: stamp failed", self._thread.name, exc_info=True)

    def _beat(self) -> None:
        with self._sessions() as session, session.begin():
            keep = self._stamp(session)
        if not keep and not self._told:
            self._told = True
            if self._on_stop is not None:
                self._on_stop()
