"""Delivering the outbox: claim due rows, send each through its channel's notifier, record
the outcome; retry with exponential backoff and jitter, never sooner than a receiver's
``Retry-After``; give up after ``max_attempts`` or on an error a retry cannot fix.

Each round commits its claim before sending and each outcome in its own transaction, so a
crash at any point leaves every row either ``pending`` (sent again), ``sending`` (put back by
the stale sweep after ``stale_sending_s``, then sent again) or finished. A message may thus
reach a channel twice, never zero times; its idempotency key makes the second harmless.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

from controlplane.domain.escalation import ChannelKind
from controlplane.domain.incidents import NotifyAction
from controlplane.domain.incidents import retry_delay_s
from controlplane.oncall.messages import Message
from controlplane.oncall.messages import build_message
from controlplane.oncall.metrics import OncallMetrics
from controlplane.oncall.notifiers.base import DeliveryError
from controlplane.oncall.notifiers.base import Destination
from controlplane.oncall.notifiers.base import Notifier
from controlplane.oncall.notifiers.registry import default_notifiers
from controlplane.settings import OncallSettings
from controlplane.store import incidents
from controlplane.store import notifications
from controlplane.store.base import utcnow
from controlplane.store.database import SessionFactory
from controlplane.store.database import make_session_factory
from controlplane.store.database import secret_box
from controlplane.store.notifications import OutboxItem

log = logging.getLogger("controlplane.oncall")


@dataclass(frozen=True, slots=True)
class SendReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    reclaimed: int = 0


class Sender:
    """Thread-safe for one caller at a time (the scheduler runs it with ``max_instances=1``)."""

    def __init__(
        self,
        sessions: SessionFactory,
        settings: OncallSettings,
        *,
        notifiers: Mapping[ChannelKind, Notifier] | None = None,
        metrics: OncallMetrics | None = None,
        clock: Callable[[], datetime] = utcnow,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._sessions = sessions
        # Most rounds find nothing: they look with a read-only session (no SQLite write lock).
        self._reads = make_session_factory(sessions.kw["bind"], read_only=True)
        self._settings = settings
        self._notifiers = dict(notifiers) if notifiers is not None else default_notifiers(settings)
        self._metrics = metrics
        self._clock = clock
        self._jitter = jitter
        self._pool = ThreadPoolExecutor(settings.sender_concurrency, thread_name_prefix="notify")

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for notifier in self._notifiers.values():
            close = getattr(notifier, "close", None)
            if close is not None:
                close()

    def run_once(self) -> SendReport:
        s = self._settings
        now = self._clock()
        stale = now - timedelta(seconds=s.stale_sending_s)
        with self._reads() as session, session.begin():
            if not notifications.work_due(session, now=now, claimed_before=stale):
                return SendReport()
        with self._sessions() as session, session.begin():
            reclaimed = notifications.reclaim_stale(session, claimed_before=stale, now=now)
            ids = notifications.claim_due(session, now=now, limit=s.sender_batch)
            items = notifications.load(session, ids)
            box = secret_box(session.get_bind())
        if reclaimed:
            log.warning("%d notification(s) left sending by a lost sender queued again", reclaimed)
        if not items:
            return SendReport(reclaimed=reclaimed)
        messages = [(item, build_message(item, settings=s, box=box, now=now)) for item in items]
        outcomes = list(self._pool.map(lambda pair: self._deliver(*pair), messages))
        counts = {"sent": 0, "retried": 0, "failed": 0}
        for item, error in zip(items, outcomes, strict=True):
            counts[self._record(item, error)] += 1
        return SendReport(claimed=len(items), reclaimed=reclaimed, **counts)

    def _deliver(self, item: OutboxItem, message: Message) -> DeliveryError | None:
        notifier = self._notifiers.get(ChannelKind(item.channel))
        if notifier is None:
            return DeliveryError(f"no notifier for {item.channel}", retryable=False)
        try:
            notifier.send(message, Destination(item.address, item.secret))
        except DeliveryError as exc:
            return exc
        except Exception as exc:  # a notifier bug must not lose the page: retry it
            log.exception("notifier %s failed unexpectedly", item.channel)
            return DeliveryError(f"{type(exc).__name__}", retryable=True)
        return None

    def _record(self, item: OutboxItem, error: DeliveryError | None) -> str:
        s = self._settings
        now = self._clock()
        if error is None:
            outcome = "sent"
        elif error.retryable and item.attempts < s.max_attempts:
            outcome = "retried"
        else:
            outcome = "failed"
        with self._sessions() as session, session.begin():
            if outcome == "sent":
                moved = notifications.mark_sent(session, item.id, now=now)
            elif outcome == "retried":
                assert error is not None
                delay = retry_delay_s(
                    item.attempts,
                    base_s=s.retry_base_s,
                    cap_s=s.retry_cap_s,
                    jitter=self._jitter(),
                    retry_after_s=error.retry_after_s,
                )
                moved = notifications.mark_retry(
                    session,
                    item.id,
                    now=now,
                    retry_at=now + timedelta(seconds=delay),
                    error=str(error),
                )
            else:
                moved = notifications.mark_failed(session, item.id, now=now, error=str(error))
            if moved and item.incident_id is not None and outcome != "retried":
                incidents.event(
                    session,
                    item.incident_id,
                    "notified" if outcome == "sent" else "notify_failed",
                    actor="system:sender",
                    now=now,
                    detail={
                        "channel": item.channel,
                        "user": item.user,
                        "action": item.action.value,
                        "attempts": item.attempts,
                        **({"error": str(error)} if error is not None else {}),
                    },
                )
        if self._metrics is not None:
            self._metrics.notifications.labels(item.channel, outcome).inc()
        if outcome == "sent" and item.action is not NotifyAction.test:
            log.info(
                "incident %s: %s %s via %s",
                item.incident_id,
                item.action.value,
                item.user,
                item.channel,
            )
        if outcome == "failed":
            log.warning(
                "notification %d (%s to %s) failed after %d attempt(s): %s",
                item.id,
                item.channel,
                item.user,
                item.attempts,
                error,
            )
        return outcome
