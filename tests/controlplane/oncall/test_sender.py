"""The sender against a PagerDuty-contract receiver: every page delivered once per incident
although 30 % of requests fail, 429 answers honoured, a crash mid-send recovered by the stale
sweep without a second PagerDuty alert, a bad event given up at once and recorded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.domain.escalation import ChannelKind
from controlplane.oncall import Sender
from controlplane.oncall.notifiers import PagerDutyNotifier
from controlplane.oncall.receivers import Faults
from controlplane.oncall.receivers import PagerDutyReceiver
from controlplane.settings import OncallSettings
from controlplane.store import incidents
from controlplane.store import notifications
from controlplane.store.database import make_session_factory
from controlplane.store.database import secret_box
from controlplane.store.models import ContactMethodRow
from controlplane.store.models import NotificationRow
from tests.controlplane.oncall.builders import deliver
from tests.controlplane.oncall.builders import person
from tests.controlplane.oncall.builders import rule
from tests.controlplane.oncall.builders import setup_paging
from tests.controlplane.oncall.builders import webhook_alert

pytestmark = pytest.mark.slow
T0 = datetime(2026, 12, 1, 12, 0, 5, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def receiver() -> Iterator[PagerDutyReceiver]:
    r = PagerDutyReceiver(Faults(seed=7)).start()
    yield r  # type: ignore[misc]
    r.stop()


@pytest.fixture
def paging(session: Session) -> Session:
    with session.begin():
        person(session, "alice", pagerduty=True)
        person(session, "bob", pagerduty=True)
        rule(session, "alice", "pd", 0)
        rule(session, "bob", "pd", 0)
        setup_paging(session)
    return session


def _sender(db_engine: Engine, receiver: PagerDutyReceiver, clock: Clock) -> Sender:
    settings = OncallSettings(retry_base_s=1, retry_cap_s=30, max_attempts=30, stale_sending_s=60)
    return Sender(
        make_session_factory(db_engine),
        settings,
        notifiers={ChannelKind.pagerduty: PagerDutyNotifier(url=receiver.url, timeout_s=5)},
        clock=clock,
        jitter=lambda: 0.5,
    )


def _states(session: Session) -> dict[str, int]:
    with session.begin():
        rows = session.scalars(select(NotificationRow.state))
        out: dict[str, int] = {}
        for state in rows:
            out[state] = out.get(state, 0) + 1
        return out


def _drain(sender: Sender, clock: Clock, session: Session, rounds: int = 200) -> None:
    for _ in range(rounds):
        sender.run_once()
        if "pending" not in _states(session) and "sending" not in _states(session):
            return
        clock.now += timedelta(seconds=31)
    raise AssertionError(f"outbox not drained: {_states(session)}")


def test_thirty_percent_failures_lose_nothing_and_page_once_per_incident(
    paging: Session, db_engine: Engine, receiver: PagerDutyReceiver
) -> None:
    receiver.faults.fail_rate = 0.3
    receiver.faults.throttle = 3  # and a few 429s first
    for n in range(20):
        deliver(paging, webhook_alert(f"f{n:02x}", name=f"Alert{n}"), now=T0)
    clock = Clock()
    sender = _sender(db_engine, receiver, clock)
    try:
        _drain(sender, clock, paging)
    finally:
        sender.close()
    assert _states(paging) == {"sent": 20}
    assert sorted(receiver.opened.values()) == [1] * 20  # 20 incidents, 20 PagerDuty alerts
    assert receiver.statuses[500] > 0 and receiver.statuses[429] == 3


def test_crash_between_claim_and_send_is_recovered_without_a_second_alert(
    paging: Session, db_engine: Engine, receiver: PagerDutyReceiver
) -> None:
    deliver(paging, webhook_alert("c1"), now=T0)
    clock = Clock()
    sender = _sender(db_engine, receiver, clock)
    try:
        sender.run_once()  # delivered
        with paging.begin():
            # As if a second sender claimed the same row and died before recording "sent".
            paging.execute(NotificationRow.__table__.update().values(state="pending"))  # type: ignore[attr-defined]
            assert notifications.claim_due(paging, now=clock.now, limit=10)
        clock.now += timedelta(seconds=30)
        assert sender.run_once().claimed == 0  # not stale yet
        clock.now += timedelta(seconds=31)
        report = sender.run_once()
    finally:
        sender.close()
    assert report.reclaimed == 1 and report.sent == 1
    assert receiver.opened == {"cplane-incident-" + str(_incident_id(paging)): 1}
    assert len(receiver.events) == 2  # delivered twice, one alert


def _incident_id(session: Session) -> int:
    with session.begin():
        return incidents.list_incidents(session)[0].id


def test_bad_event_fails_at_once_and_is_on_the_timeline(
    paging: Session, db_engine: Engine, receiver: PagerDutyReceiver
) -> None:
    with paging.begin():
        bad = secret_box(paging.get_bind()).encrypt('{"routing_key": "too-short"}')
        paging.execute(ContactMethodRow.__table__.update().values(secret_enc=bad))  # type: ignore[attr-defined]
    deliver(paging, webhook_alert("b1"), now=T0)
    clock = Clock()
    sender = _sender(db_engine, receiver, clock)
    try:
        report = sender.run_once()
    finally:
        sender.close()
    assert report.failed == 1 and _states(paging) == {"failed": 1}
    incident_id = _incident_id(paging)
    with paging.begin():
        detail = incidents.get_incident(paging, incident_id)
    (failed,) = [e for e in detail.timeline if e.kind == "notify_failed"]
    assert "400" in failed.detail["error"] and failed.detail["user"] == "alice"
