"""Start-up (and periodic) reconcile: a rollout that nobody is watching any more is put back
on the last known good config.

"Nobody is watching" means its heartbeat is older than ``stale_after_s``: a rollout another
live process is baking is left alone. A reconciler claims a rollout by moving its heartbeat
with a compare-and-set UPDATE, so two control-plane replicas never restore the same engine
twice. Rollouts waiting for an operator's approval are not abandoned, only parked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from datetime import timedelta
from typing import Any

from controlplane.domain import ConflictError
from controlplane.domain import RolloutState
from controlplane.guard.events import EventBus
from controlplane.guard.events import GuardEvent
from controlplane.guard.runner import HEALTH_REASON
from controlplane.guard.runner import AdapterFactory
from controlplane.guard.runner import restore_last_known_good
from controlplane.settings import GuardSettings
from controlplane.store import configs
from controlplane.store import engines
from controlplane.store import rollouts
from controlplane.store.base import utcnow
from controlplane.store.database import SessionFactory

log = logging.getLogger("controlplane.guard")
ACTOR = "reconcile"


def reconcile(
    sessions: SessionFactory,
    *,
    policy: GuardSettings,
    adapter_factory: AdapterFactory,
    events: EventBus,
    now: Callable[[], datetime] = utcnow,
) -> list[int]:
    """Settle every abandoned rollout; returns the ids it settled."""
    with sessions() as session, session.begin():
        candidates = [
            r.id
            for r in rollouts.unfinished_rollouts(session)
            if not (r.state == RolloutState.pending.value and r.evidence.get("awaiting_approval"))
        ]
    settled = []
    for rollout_id in candidates:
        if _claim(sessions, rollout_id, cutoff=now() - timedelta(seconds=policy.stale_after_s)):
            _settle(
                sessions, rollout_id, policy=policy, adapter_factory=adapter_factory, events=events
            )
            settled.append(rollout_id)
    return settled


def _claim(sessions: SessionFactory, rollout_id: int, *, cutoff: datetime) -> bool:
    with sessions() as session, session.begin():
        return rollouts.claim_abandoned(session, rollout_id, cutoff)


def _settle(
    sessions: SessionFactory,
    rollout_id: int,
    *,
    policy: GuardSettings,
    adapter_factory: AdapterFactory,
    events: EventBus,
) -> None:
    with sessions() as session, session.begin():
        row = rollouts.get_rollout(session, rollout_id)
        engine = engines.get_engine(session, row.engine_id)
        target = engines.engine_target(engine)
        lkg = configs.last_known_good(session, engine.id)
        lkg_config = dict(lkg.config) if lkg else dict(row.evidence.get("from_config", {}))
        if row.reason == HEALTH_REASON and row.evidence.get("to_config"):
            # A health rollback's target is the good config; LKG is still the failing one.
            lkg_config = dict(row.evidence["to_config"])
        state = RolloutState(row.state)
    started = time.monotonic()
    if state is RolloutState.pending:
        # Never applied: the engine was not touched.
        _finish(
            sessions,
            rollout_id,
            RolloutState.failed,
            {"reconciled": {"applied": False}},
            "abandoned before it was applied (control plane restarted)",
        )
        summary = "abandoned before apply; engine untouched"
        events.emit(GuardEvent("rollout.reconciled", target.name, rollout_id, summary))
        return
    adapter = adapter_factory(target)
    try:
        restore = restore_last_known_good(adapter, lkg_config, timeout_s=policy.rollback_timeout_s)
    finally:
        adapter.close()
    evidence = {
        "reconciled": {
            **restore,
            "found_in": state.value,
            "took_s": round(time.monotonic() - started, 3),
        }
    }
    if restore["restored"]:
        _finish(sessions, rollout_id, RolloutState.rolled_back, evidence, None)
        summary = f"found {state.value} after a restart; engine back on last known good"
    else:
        error = f"found {state.value} after a restart; restore failed: {restore['error']}"
        _finish(sessions, rollout_id, RolloutState.failed, evidence, error)
        summary = error
    events.emit(GuardEvent("rollout.reconciled", target.name, rollout_id, summary, evidence))


def _finish(
    sessions: SessionFactory,
    rollout_id: int,
    state: RolloutState,
    evidence: dict[str, Any],
    error: str | None,
) -> None:
    with sessions() as session, session.begin():
        row = rollouts.get_rollout(session, rollout_id)
        try:
            rollouts.move(session, row, state, actor=ACTOR, evidence=evidence, error=error)
        except ConflictError:
            log.info("rollout %d settled by someone else meanwhile", rollout_id)
