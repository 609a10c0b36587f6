"""An incident shows the rollouts and tuning runs of its engine that overlapped the window
from a lead time before it opened to its resolution: what finished long before, began after,
or ran on another engine stays out; the lead time widens the window."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from controlplane.schemas.engines import EngineCreate
from controlplane.store import engines
from controlplane.store import incidents
from controlplane.store.models import RolloutRow
from controlplane.store.models import TuningRunRow
from tests.controlplane.oncall.builders import deliver
from tests.controlplane.oncall.builders import person
from tests.controlplane.oncall.builders import setup_paging
from tests.controlplane.oncall.builders import webhook_alert

NOW = datetime(2026, 12, 1, 12, 0, 5, tzinfo=UTC)
MIN = timedelta(minutes=1)


def _rollout(
    session: Session, engine_id: int, state: str, began: datetime, ended: datetime | None
) -> int:
    row = RolloutRow(
        engine_id=engine_id,
        from_config_id=None,
        to_config_id=None,
        reason=f"manual-{state}",
        actor="t",
        state=state,
        evidence={},
        created=began,
        finished_at=ended,
    )
    session.add(row)
    session.flush()
    return row.id


def _run(
    session: Session,
    engine_id: int,
    state: str,
    *,
    created: datetime,
    began: datetime | None,
    ended: datetime | None,
) -> int:
    row = TuningRunRow(
        engine_id=engine_id,
        study_name=f"s-{state}-{created.isoformat()}",
        state=state,
        objective="max_throughput",
        spec={},
        actor="t",
        created=created,
        started_at=began,
        finished_at=ended,
    )
    session.add(row)
    session.flush()
    return row.id


@pytest.fixture
def world(session: Session) -> dict[str, int]:
    with session.begin():
        person(session, "alice")
        person(session, "bob")
        setup_paging(session)
        eid = engines.add_engine(
            session, data=EngineCreate(name="llm-a", url="http://127.0.0.1:9"), actor="t"
        ).id
        other = engines.add_engine(
            session, data=EngineCreate(name="llm-b", url="http://127.0.0.1:9"), actor="t"
        ).id
        ids = {
            "old": _rollout(session, eid, "committed", NOW - 180 * MIN, NOW - 120 * MIN),
            "before": _rollout(session, eid, "rolled_back", NOW - 50 * MIN, NOW - 20 * MIN),
            "during": _rollout(session, eid, "baking", NOW - 5 * MIN, None),
            "after": _rollout(session, eid, "committed", NOW + 90 * MIN, NOW + 95 * MIN),
            "elsewhere": _rollout(session, other, "committed", NOW - 5 * MIN, NOW),
            "run_in": _run(
                session,
                eid,
                "done",
                created=NOW - 15 * MIN,
                began=NOW - 10 * MIN,
                ended=NOW + 10 * MIN,
            ),
            "run_queued": _run(
                session, eid, "pending", created=NOW - 240 * MIN, began=None, ended=None
            ),
            "run_out": _run(
                session,
                eid,
                "failed",
                created=NOW - 300 * MIN,
                began=NOW - 300 * MIN,
                ended=NOW - 240 * MIN,
            ),
        }
    deliver(session, webhook_alert("a1"), now=NOW)
    with session.begin():
        (incident,) = incidents.list_incidents(session)
        incidents.resolve(session, incident.id, actor="t", now=NOW + 60 * MIN)
    ids["incident"] = incident.id
    return ids


def test_changes_overlapping_the_window_are_shown(session: Session, world: dict[str, int]) -> None:
    with session.begin():
        detail = incidents.get_incident(session, world["incident"], now=NOW + 600 * MIN)
    assert detail.engine == "llm-a"
    assert (detail.context_from, detail.context_to) == (NOW - 30 * MIN, NOW + 60 * MIN)
    assert [(r.id, r.state) for r in detail.rollouts] == [
        (world["before"], "rolled_back"),
        (world["during"], "baking"),
    ]
    assert detail.rollouts[0].reason == "manual-rolled_back"
    assert detail.rollouts[1].finished_at is None
    # A queued run that never started counts from when it was queued.
    assert [(t.id, t.state) for t in detail.tuning_runs] == [
        (world["run_queued"], "pending"),
        (world["run_in"], "done"),
    ]
    assert detail.tuning_runs[1].started_at == NOW - 10 * MIN


def test_a_longer_lead_reaches_further_back(session: Session, world: dict[str, int]) -> None:
    with session.begin():
        detail = incidents.get_incident(
            session, world["incident"], now=NOW + 600 * MIN, lead=timedelta(hours=3)
        )
    assert [r.id for r in detail.rollouts] == [world["old"], world["before"], world["during"]]
    assert world["run_out"] not in [t.id for t in detail.tuning_runs]
