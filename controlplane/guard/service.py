"""The guard inside a long-running process (the API server): a bounded pool of runners, a
reconcile at start-up, and the hooks an operator's approve / rollback need. The periodic
reconcile while the server runs is the scheduler's ``reconcile`` job (on the leader)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor

from controlplane.domain import RolloutState
from controlplane.engines import adapter_for
from controlplane.guard.events import EventBus
from controlplane.guard.reconcile import reconcile
from controlplane.guard.runner import AdapterFactory
from controlplane.guard.runner import RolloutRunner
from controlplane.settings import GuardSettings
from controlplane.store.database import SessionFactory

log = logging.getLogger("controlplane.guard")


class GuardService:
    def __init__(
        self,
        *,
        sessions: SessionFactory,
        policy: GuardSettings,
        events: EventBus | None = None,
        adapter_factory: AdapterFactory = adapter_for,
        max_parallel: int = 8,
        watching: Callable[[int, bool], None] | None = None,
    ) -> None:
        """``watching(rollout_id, active)`` is told when a rollout starts and stops being
        guarded here, e.g. to scrape that engine at the fast rate meanwhile."""
        self.events = events or EventBus()
        self._watching = watching
        self._sessions = sessions
        self._policy = policy
        self._adapter_factory = adapter_factory
        self._runner = RolloutRunner(
            session_factory=sessions,
            policy=policy,
            events=self.events,
            adapter_factory=adapter_factory,
        )
        self._pool = ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="guard")
        self._stops: dict[int, threading.Event] = {}
        self._lock = threading.Lock()
        self._reconciler = threading.Thread(
            target=self._reconcile_once, name="guard-reconcile", daemon=True
        )

    def start(self) -> None:
        """Reconcile what a crashed process left mid-rollout, in the background: an engine
        that does not answer must not hold up the server's start."""
        self._reconciler.start()

    def submit(self, rollout_id: int) -> Future[RolloutState]:
        stop = threading.Event()
        with self._lock:
            self._stops[rollout_id] = stop
        future = self._pool.submit(self._run, rollout_id, stop)
        return future

    def request_rollback(self, rollout_id: int) -> bool:
        """Stop the bake now if this process runs it; other processes see the stored flag."""
        with self._lock:
            stop = self._stops.get(rollout_id)
        if stop is None:
            return False
        stop.set()
        return True

    def reconcile_now(self) -> list[int]:
        return reconcile(
            self._sessions,
            policy=self._policy,
            adapter_factory=self._adapter_factory,
            events=self.events,
        )

    def shutdown(self) -> None:
        """Roll back what is still baking (a change is never left unguarded), then stop."""
        with self._lock:
            for stop in self._stops.values():
                stop.set()
        self._pool.shutdown(wait=True)
        self._reconciler.join(timeout=5)

    def _run(self, rollout_id: int, stop: threading.Event) -> RolloutState:
        self._notify(rollout_id, True)
        try:
            return self._runner.execute(rollout_id, stop=stop)
        except Exception:
            log.exception(
                "rollout %d: guard crashed; reconcile will restore the engine", rollout_id
            )
            raise
        finally:
            self._notify(rollout_id, False)
            with self._lock:
                self._stops.pop(rollout_id, None)

    def _notify(self, rollout_id: int, active: bool) -> None:
        if self._watching is None:
            return
        try:
            self._watching(rollout_id, active)
        except Exception:  # noqa: BLE001 - observability must not break the guard
            log.exception("watching hook failed for rollout %d", rollout_id)

    def _reconcile_once(self) -> None:
        try:
            self.reconcile_now()
        except Exception:  # noqa: BLE001 - the scheduler's reconcile job retries
            log.exception("start-up reconcile failed; the scheduler's reconcile job retries")
