"""The detector job on the real store: samples as the collectors store them (request counters
under the engine, process RSS under a host source), alerts raised once and resolved; guard
events as alerts, resolved by a later commit or by age."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy import select

from controlplane.domain import Sample
from controlplane.guard import GuardEvent
from controlplane.guard.alerting import ALERTS
from controlplane.guard.alerting import GuardAlerts
from controlplane.guard.alerting import expire_guard_alerts
from controlplane.scheduler import Firing
from controlplane.scheduler.detectors import DetectorSource
from controlplane.scheduler.health_watch import EVENT_KIND
from controlplane.schemas.engines import EngineCreate
from controlplane.settings import Settings
from controlplane.store import alerts
from controlplane.store import engines
from controlplane.store import samples
from controlplane.store.database import make_session_factory
from controlplane.store.models import AlertEventRow
from controlplane.store.models import AlertRow
from tests.fixtures.synthetic_series import EngineSeries
from tests.fixtures.synthetic_series import generate

HOURS = 3600.0


def _store(db_engine: Engine, name: str, series: EngineSeries) -> None:
    rows = [Sample(t, name, "requests_succeeded_total", (), v) for t, v in series.counter]
    rows += [
        Sample(
            t,
            "host:detector-test",
            "host_engine_process_resident_memory_bytes",
            (("engine", name),),
            v,
        )
        for t, v in series.memory
    ]
    with make_session_factory(db_engine)() as session, session.begin():
        engines.add_engine(
            session, data=EngineCreate(name=name, url="http://127.0.0.1:9"), actor="t"
        )
        samples.insert_samples(session, rows)


def _run(db_engine: Engine, at: float) -> dict[str, object]:
    now = datetime.fromtimestamp(at, UTC)
    source = DetectorSource(Settings())
    outcome = source.run(
        Firing(
            job="detectors",
            scheduled_for=now,
            fence=None,
            sessions=make_session_factory(db_engine),
            now=lambda: now,
        )
    )
    return outcome.detail


def _alerts(db_engine: Engine) -> dict[tuple[str, str], str]:
    with make_session_factory(db_engine)() as session:
        return {(a.engine or "", a.alertname): a.status.value for a in alerts.list_alerts(session)}


def test_detectors_raise_once_and_resolve(db_engine: Engine) -> None:
    leaking = generate(seconds=2 * HOURS, leak_per_100k=0.2)
    stepped = generate(seconds=HOURS / 2, switch_at=HOURS / 4, rps_swing=0.5, seed=1)
    stepped.counter = [(t + 1.5 * HOURS, v) for t, v in stepped.counter]
    stepped.memory = [(t + 1.5 * HOURS, v) for t, v in stepped.memory]
    _store(db_engine, "leaky", leaking)
    _store(db_engine, "swingy", stepped)
    end = leaking.counter[-1][0]
    detail = _run(db_engine, end)
    assert detail["changed"] == {
        "leaky": ["EngineMemoryLeak firing"],
        "swingy": ["EngineQPSSwing firing"],
    }
    assert _alerts(db_engine) == {
        ("leaky", "EngineMemoryLeak"): "firing",
        ("swingy", "EngineQPSSwing"): "firing",
    }

    assert _run(db_engine, end + 30)["changed"] == {}  # still firing: no second event
    with make_session_factory(db_engine)() as session:
        assert session.query(AlertEventRow).count() == 2
        leak_row = session.scalars(
            select(AlertRow).where(AlertRow.alertname == "EngineMemoryLeak")
        ).one()
        assert "per 100k requests" in leak_row.annotations["summary"]
        assert leak_row.source == "detector"

    # Ten minutes later without traffic: the swing window is idle, so its alert resolves; the
    # leak fit still covers the leaking segment, so that alert stays.
    detail = _run(db_engine, end + 900)
    assert detail["changed"] == {"swingy": ["EngineQPSSwing resolved"]}


def test_guard_events_become_alerts(db_engine: Engine) -> None:
    factory = make_session_factory(db_engine)
    with factory() as session, session.begin():
        engines.add_engine(
            session, data=EngineCreate(name="g1", url="http://127.0.0.1:9"), actor="t"
        )
    listener = GuardAlerts(factory)
    listener(GuardEvent("rollout.rolled_back", "g1", 7, "p99 over the SLO while baking"))
    listener(GuardEvent("health.rollback", "g1", 9, "3 checks failed"))
    listener(GuardEvent("rollout.failed", "unknown-engine", 3, "ignored"))
    assert _alerts(db_engine) == {
        ("g1", "EngineRolledBack"): "firing",
        ("g1", "HealthWatchRollback"): "firing",
    }
    # The health watch's own rollback (rollout 9) commits: only the older alert resolves.
    listener(GuardEvent("rollout.committed", "g1", 9, "rollback committed"))
    assert _alerts(db_engine) == {
        ("g1", "EngineRolledBack"): "resolved",
        ("g1", "HealthWatchRollback"): "firing",
    }
    # A second rollback fires the same alert again, its history kept.
    listener(GuardEvent("rollout.rolled_back", "g1", 11, "again"))
    with factory() as session:
        row = alerts.get_by_fingerprint(session, "guard:rollout.rolled_back:g1")
        assert row is not None and row.state == "firing" and row.labels["rollout_id"] == "11"
        history = alerts.get_alert(session, row.id).events
        assert [e.status.value for e in history] == ["firing", "resolved", "firing"]
    with factory() as session, session.begin():
        later = datetime.now(UTC) + timedelta(hours=7)
        assert expire_guard_alerts(session, older_than_s=6 * HOURS, now=later) == 2
    assert set(_alerts(db_engine).values()) == {"resolved"}


def test_the_health_watch_event_is_one_the_guard_alerts_know() -> None:
    assert EVENT_KIND in ALERTS
