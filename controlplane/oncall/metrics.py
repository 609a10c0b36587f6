"""On-call series on ``/metrics``.

Counted by this process as it works: ``cplane_notifications_total{channel, outcome}``
(``sent``, ``failed``, ``retried``) and ``cplane_incident_time_to_ack_seconds`` (observed
when a person acknowledges). Read from the store at scrape time, so every replica shows the
same: ``cplane_incidents{state}`` and ``cplane_notifications_queued{channel, state}``
(the outbox by state; a growing ``pending`` means pages are not getting out).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from controlplane.domain.escalation import ChannelKind
from controlplane.domain.incidents import IncidentState
from controlplane.domain.incidents import NotificationState
from controlplane.store import incidents
from controlplane.store import notifications
from controlplane.store.database import SessionFactory

log = logging.getLogger(__name__)


class OncallMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.notifications = Counter(
            "cplane_notifications_total",
            "Notification delivery attempts by channel and outcome (sent, failed, retried).",
            ["channel", "outcome"],
            registry=registry,
        )
        self.time_to_ack = Histogram(
            "cplane_incident_time_to_ack_seconds",
            "Seconds from an incident triggering to a person acknowledging it.",
            buckets=(30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400),
            registry=registry,
        )
        for channel in ChannelKind:
            for outcome in ("sent", "failed", "retried"):
                self.notifications.labels(channel.value, outcome)


class OncallStoreMetrics(Collector):
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    def collect(self) -> Iterator[Metric]:
        try:
            with self._sessions() as session:
                by_state = incidents.counts_by_state(session)
                queued = notifications.counts_by_state(session)
        except SQLAlchemyError:
            log.debug("on-call counts unavailable", exc_info=True)
            return
        family = GaugeMetricFamily("cplane_incidents", "Incidents by state.", labels=["state"])
        for state in IncidentState:
            family.add_metric([state.value], by_state.get(state.value, 0))
        yield family
        outbox = GaugeMetricFamily(
            "cplane_notifications_queued",
            "Notification outbox rows by channel and state.",
            labels=["channel", "state"],
        )
        for channel in ChannelKind:
            for queue_state in NotificationState:
                key = (channel.value, queue_state.value)
                outbox.add_metric(list(key), queued.get(key, 0))
        yield outbox
