"""The leader's on-call jobs: ``oncall_escalation`` runs due escalation steps (each writes
its outbox rows in its own transaction) and wakes snoozed incidents; ``oncall_sender``
delivers the outbox. Both fire every second or less, so their firings are counted on
``/metrics`` and not recorded as job runs."""

from __future__ import annotations

import logging
from collections.abc import Hashable

from sqlalchemy.orm import Session

from controlplane.domain.scheduler import JobScope
from controlplane.oncall.metrics import OncallMetrics
from controlplane.oncall.sender import Sender
from controlplane.scheduler._triggers import interval_trigger
from controlplane.scheduler._types import Firing
from controlplane.scheduler._types import Outcome
from controlplane.scheduler._types import ScheduledJob
from controlplane.settings import Settings
from controlplane.store import incidents
from controlplane.store.database import SessionFactory
from controlplane.store.database import make_session_factory

log = logging.getLogger("controlplane.oncall")

ESCALATION_JOB = "oncall_escalation"
SENDER_JOB = "oncall_sender"


class OncallJobSource:
    name = "oncall"
    scope = JobScope.leader

    def __init__(
        self, settings: Settings, sessions: SessionFactory, metrics: OncallMetrics | None
    ) -> None:
        self._settings = settings
        self._reads = make_session_factory(sessions.kw["bind"], read_only=True)
        self._sender = Sender(sessions, settings.oncall, metrics=metrics)

    def version(self, session: Session) -> Hashable:
        s = self._settings.oncall
        return (s.escalation_interval_s, s.sender_interval_s)

    def load(self, session: Session) -> list[ScheduledJob]:
        s = self._settings.oncall
        return [
            ScheduledJob(
                id=ESCALATION_JOB,
                trigger=interval_trigger(s.escalation_interval_s),
                run=self.escalate,
                signature=s.escalation_interval_s,
            ),
            ScheduledJob(
                id=SENDER_JOB,
                trigger=interval_trigger(s.sender_interval_s),
                run=self.send,
                signature=s.sender_interval_s,
            ),
        ]

    def escalate(self, firing: Firing) -> Outcome:
        now = firing.now()
        with self._reads() as session, session.begin():
            if not incidents.escalation_due(session, now=now):
                return Outcome("idle", detail={"steps": 0})
        with firing.sessions() as session, session.begin():
            steps = incidents.escalate_due(session, now=now)
        return Outcome("idle", detail={"steps": steps})

    def send(self, firing: Firing) -> Outcome:
        report = self._sender.run_once()
        return Outcome("idle", detail={"sent": report.sent, "failed": report.failed})

    def close(self) -> None:
        self._sender.close()
