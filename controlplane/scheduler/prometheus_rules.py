"""Keeping Prometheus's SLO rule file in step with the store: a leader job that regenerates
the burn-rate rules every ``CP_PROMETHEUS__RULES_INTERVAL_S`` and, only when their text
changed, writes them (checked by promtool, replaced by rename) and reloads Prometheus.

Polling the store rather than hooking the SLO routes means an SLO changed by any path (the
API of any replica, ``cplane slo set`` writing the store directly) reaches Prometheus within
one interval, and a file someone edited by hand is put back. A reload that failed is retried
at every firing until one succeeds, although the file no longer changes. Registered only when
``CP_PROMETHEUS__URL`` or ``CP_PROMETHEUS__RULES_FILE`` is set, so an installation without
Prometheus needs no promtool.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable

from sqlalchemy.orm import Session

from controlplane.domain import DomainError
from controlplane.domain.scheduler import JobScope
from controlplane.prometheus import current_rules
from controlplane.prometheus.files import reload
from controlplane.prometheus.files import write_checked
from controlplane.scheduler._triggers import interval_trigger
from controlplane.scheduler._types import Firing
from controlplane.scheduler._types import Outcome
from controlplane.scheduler._types import ScheduledJob
from controlplane.settings import Settings

log = logging.getLogger("controlplane.prometheus")

JOB = "prometheus_rules"


def wanted(settings: Settings) -> bool:
    """Whether this installation has a Prometheus whose rules the control plane keeps."""
    return bool(settings.prometheus.url or settings.prometheus.rules_file)


class PrometheusRulesSource:
    """The rule-file job as a scheduler job source (leader scope)."""

    name = JOB
    scope = JobScope.leader

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._reload_pending = False
        self._last_error: str | None = None

    def version(self, session: Session) -> Hashable:
        return self._settings.prometheus.rules_interval_s

    def load(self, session: Session) -> list[ScheduledJob]:
        interval = self._settings.prometheus.rules_interval_s
        return [
            ScheduledJob(
                id=JOB, trigger=interval_trigger(interval), run=self.run, signature=interval
            )
        ]

    def _failed(self, message: str) -> Outcome:
        # One line when the failure starts or changes, not one per firing.
        if message != self._last_error:
            log.warning("SLO rule file not updated: %s", message)
            self._last_error = message
        # Counted as failed on /metrics (and no last success), without a job-run row: the
        # job fires every few seconds and a failure repeats until someone acts.
        return Outcome("failed", error=message)

    def run(self, firing: Firing) -> Outcome:
        settings = self._settings
        path = settings.prometheus_rules_file
        try:
            with firing.sessions() as session, session.begin():
                text = current_rules(session)
            changed = write_checked(text, path, promtool=settings.prometheus.promtool)
        except DomainError as exc:
            return self._failed(str(exc))
        reloaded = False
        if settings.prometheus.url and (changed or self._reload_pending):
            try:
                reload(settings.prometheus.url, timeout_s=settings.prometheus.reload_timeout_s)
            except DomainError as exc:
                self._reload_pending = True
                return self._failed(str(exc))
            self._reload_pending = False
            reloaded = True
        if self._last_error is not None:
            log.info("SLO rule file %s in step again", path)
            self._last_error = None
        return Outcome("idle", detail={"changed": changed, "reloaded": reloaded})
