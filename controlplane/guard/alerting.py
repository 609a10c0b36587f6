"""Guard events as alerts: a rollback, a failed rollout and a health-watch rollback each fire
an alert of source ``guard`` on their engine, in the same model as Alertmanager's.

One alert per (engine, kind): a second rollback of the same engine fires the same alert again
(its history shows both). It resolves when a **later** rollout on that engine commits (a
rollout with a higher id: the rollback a health watch starts commits too, and must not resolve
the alert about itself), or after ``CP_DETECTORS__GUARD_ALERT_RESOLVE_AFTER_S`` (see
:func:`expire_guard_alerts`, run with the detectors).
"""

from __future__ import annotations

import logging
from datetime import datetime
from datetime import timedelta

from sqlalchemy.orm import Session

from controlplane.domain import NotFoundError
from controlplane.domain.alerts import AlertSource
from controlplane.guard.events import GuardEvent
from controlplane.store import alerts
from controlplane.store import engines
from controlplane.store.base import utcnow
from controlplane.store.database import SessionFactory

log = logging.getLogger("controlplane.guard")

ACTOR = "guard"
ALERTS: dict[str, tuple[str, str]] = {
    # event kind: (alertname, severity)
    "rollout.rolled_back": ("EngineRolledBack", "warning"),
    "rollout.failed": ("RolloutFailed", "critical"),
    "health.rollback": ("HealthWatchRollback", "critical"),
}
COMMITTED = "rollout.committed"


def fingerprint(kind: str, engine: str) -> str:
    return f"guard:{kind}:{engine}"


class GuardAlerts:
    """An :class:`~controlplane.guard.EventBus` listener; writes in its own transaction."""

    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    def __call__(self, event: GuardEvent) -> None:
        if event.kind not in ALERTS and event.kind != COMMITTED:
            return
        with self._sessions() as session, session.begin():
            try:
                engine_id = engines.get_engine(session, event.engine).id
            except NotFoundError:
                return  # removed meanwhile: nothing to link or resolve
            if event.kind == COMMITTED:
                resolve_after_commit(session, engine_id, event.rollout_id, now=utcnow())
                return
            alertname, severity = ALERTS[event.kind]
            labels = {
                "alertname": alertname,
                "engine": event.engine,
                "severity": severity,
                "rollout_id": str(event.rollout_id),
            }
            raised = alerts.raise_alert(
                session,
                alerts.RaisedAlert(
                    fingerprint=fingerprint(event.kind, event.engine),
                    alertname=alertname,
                    source=AlertSource.guard,
                    engine_id=engine_id,
                    labels=labels,
                    annotations={"summary": event.summary},
                ),
                actor=ACTOR,
                now=utcnow(),
            )
            if raised:
                log.info("alert %s firing for engine %s", alertname, event.engine)


def resolve_after_commit(
    session: Session, engine_id: int, rollout_id: int, *, now: datetime
) -> int:
    """Resolve the engine's guard alerts about rollouts older than the one that committed."""
    done = 0
    for row in alerts.firing(session, source=AlertSource.guard, engine_id=engine_id):
        about = row.labels.get("rollout_id", "")
        if about.isdigit() and int(about) < rollout_id:
            done += alerts.resolve_alert(
                session, row, actor=ACTOR, now=now, reason=f"rollout {rollout_id} committed"
            )
    return done


def expire_guard_alerts(session: Session, *, older_than_s: float, now: datetime) -> int:
    """Resolve guard alerts that have fired for longer than ``older_than_s``."""
    cutoff = now - timedelta(seconds=older_than_s)
    done = 0
    for row in alerts.firing(session, source=AlertSource.guard):
        if row.starts_at <= cutoff:
            done += alerts.resolve_alert(
                session, row, actor=ACTOR, now=now, reason=f"fired for over {older_than_s:g} s"
            )
    return done
