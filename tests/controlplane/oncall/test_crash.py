"""Kill -9 of a real ``cplane up`` between alert arrival and delivery: while its sender's
requests are in flight at a slow PagerDuty-contract receiver (so the receiver gets events the
dead process never recorded as sent) and with pages still queued. After the restart every
incident has paged, none is missing, and each opened exactly one PagerDuty alert: the events
sent again after the crash carried the same dedup_key and updated it."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import httpx
import pytest

from controlplane.domain import Role
from controlplane.oncall.receivers import Faults
from controlplane.oncall.receivers import PagerDutyReceiver
from controlplane.settings import Settings
from controlplane.store import users
from controlplane.store.database import make_engine
from controlplane.store.database import make_session_factory
from controlplane.store.database import unit_of_work
from tests.controlplane.oncall.builders import message
from tests.controlplane.oncall.builders import person
from tests.controlplane.oncall.builders import rule
from tests.controlplane.oncall.builders import setup_paging
from tests.controlplane.oncall.builders import webhook_alert
from tests.fixtures.cli import ControlPlane
from tests.fixtures.cli import run_cplane
from tests.fixtures.engines import free_port

pytestmark = pytest.mark.slow
ROUNDS = 1
GROUPS_PER_ROUND = 8


def test_kill_9_between_arrival_and_delivery_loses_no_page_and_pages_once(
    tmp_path: Path,
) -> None:
    receiver = PagerDutyReceiver(Faults(delay_s=1.0)).start()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CP_")},
        "CP_DATA_DIR": str(tmp_path / "cp"),
        "CP_SCHEDULER__LEASE_S": "1",
        "CP_ONCALL__STALE_SENDING_S": "5",
        "CP_ONCALL__RETRY_BASE_S": "0.5",
        "CP_ONCALL__PAGERDUTY_URL": receiver.url,
        "CP_LOG_LEVEL": "WARNING",
    }
    run_cplane(env, "db", "upgrade")
    engine = make_engine(Settings(data_dir=tmp_path / "cp"))
    with unit_of_work(make_session_factory(engine)) as s:
        person(s, "alice", pagerduty=True)
        person(s, "bob", pagerduty=True)
        rule(s, "alice", "pd", 0)
        rule(s, "bob", "pd", 0)
        setup_paging(s)
        am = users.create_user(s, name="am", role=Role.operator, actor="t")
        _row, token = users.create_token(s, user=am, name="am", ttl=None, actor="t")
    engine.dispose()
    headers = {"Authorization": f"Bearer {token}"}
    cp = ControlPlane(env, free_port())
    rng = random.Random(15)
    sent_groups = 0
    try:
        for _ in range(ROUNDS):
            cp.start()
            for _ in range(GROUPS_PER_ROUND):
                body = message(webhook_alert(f"{sent_groups:04x}", name=f"Alert{sent_groups}"))
                response = httpx.post(
                    f"{cp.url}/api/v1/alerts/alertmanager", json=body, headers=headers
                )
                assert response.status_code == 200, response.text
                sent_groups += 1
            deadline = time.monotonic() + 30
            while receiver.started == 0:  # the sender's first requests are in flight
                assert time.monotonic() < deadline, "no page left the control plane"
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.5))
            cp.kill()
        cp.start()  # the last one runs until the outbox is empty
        deadline = time.monotonic() + 60
        while len(receiver.opened) < sent_groups and time.monotonic() < deadline:
            time.sleep(0.2)
        listed = httpx.get(f"{cp.url}/api/v1/incidents?limit=1000", headers=headers).json()
    finally:
        cp.stop()
        receiver.stop()
    keys = {i["key"] for i in listed}
    assert len(keys) == sent_groups
    assert set(receiver.opened) == keys  # every incident paged, none missing
    assert set(receiver.opened.values()) == {1}  # and opened one PagerDuty alert each
    assert len(receiver.events) > sent_groups  # some were sent again: the crash was mid-send
