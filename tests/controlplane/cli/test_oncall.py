"""The on-call commands on a real (SQLite) store: a schedule and a policy from files, a
route, contact methods with the secret from the environment, ``oncall who`` across a DST
switch, incidents from a guard alert acknowledged and noted, deleting a user on call refused;
bad input exits 2 with one line naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from icalendar import Calendar
from sqlalchemy import select

from controlplane.guard import GuardEvent
from controlplane.guard.alerting import GuardAlerts
from controlplane.schemas.engines import EngineCreate
from controlplane.settings import Settings
from controlplane.store import engines
from controlplane.store import oncall
from controlplane.store import rollouts
from controlplane.store.database import make_engine
from controlplane.store.database import make_session_factory
from controlplane.store.models import ContactMethodRow
from tests.fixtures.cli import Run

SCHEDULE = """\
name: primary
timezone: Europe/Berlin
layers:
  - name: daily
    kind: daily
    start: "2026-10-20T09:00:00"
    participants: [alice, bob]
"""
POLICY = {
    "name": "default",
    "steps": [{"targets": [{"kind": "schedule", "ref": "primary"}], "delay_s": 300}],
}


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Run:
    monkeypatch.delenv("CP_DATABASE_URL", raising=False)
    monkeypatch.setenv("CP_DATA_DIR", str(tmp_path / "data"))
    run = Run(capsys)
    assert run("db", "upgrade")[0] == 0
    for name in ("alice", "bob"):
        assert run("user", "create", name, "--role", "operator")[0] == 0
    return run


def test_configure_and_ask_who_is_on_call_across_dst(
    cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "s.yaml").write_text(SCHEDULE)
    (tmp_path / "p.json").write_text(json.dumps(POLICY))
    assert cli("oncall-schedule", "create", str(tmp_path / "s.yaml"))[0] == 0
    assert cli("escalation", "create", str(tmp_path / "p.json"))[0] == 0
    assert cli("oncall", "route", "add", "all", "--policy", "default")[0] == 0
    monkeypatch.setenv("PD_KEY", "c" * 32)
    code, out, err = cli(
        "oncall", "contact", "add", "alice", "pd", "--kind", "pagerduty", "--secret-env", "PD_KEY"
    )
    assert code == 0, err
    assert "c" * 32 not in out  # the key is never printed
    # Key rotation carries contact-method secrets along with engine tokens.
    code, out, err = cli("db", "rotate-key")
    assert code == 0 and "1 contact-method secret(s)" in out, err
    engine = make_engine(Settings(data_dir=tmp_path / "data"))
    with make_session_factory(engine)() as session:
        (sealed,) = session.scalars(select(ContactMethodRow.secret_enc))
        assert oncall.contact_secret(session, sealed) == {"routing_key": "c" * 32}
    engine.dispose()
    assert cli("user", "timezone", "alice", "Europe/Berlin")[0] == 0
    code, out, _ = cli("user", "list", "--json")
    assert {u["name"]: u["timezone"] for u in json.loads(out)} == {
        "alice": "Europe/Berlin",
        "bob": "UTC",
    }
    code, out, _ = cli("notify", "test", "alice")
    assert code == 0 and "queued 1 test page(s) for alice" in out
    # 2026-10-25: CET starts; the 09:00 handoff is 08:00 UTC that day (07:00 the day before).
    who = [
        json.loads(cli("oncall", "who", "--at", at, "--json")[1])[0]["user"]
        for at in ("2026-10-24T07:30:00Z", "2026-10-25T07:30:00Z", "2026-10-25T08:00:00Z")
    ]
    assert who == ["alice", "alice", "bob"]  # shift 4 lasts 25 hours
    code, out, err = cli("oncall-schedule", "ical", "primary", "--days", "3")
    assert code == 0, err
    events = [e for e in Calendar.from_ical(out).walk() if e.name == "VEVENT"]
    assert {str(e["summary"]) for e in events} == {"On call: alice", "On call: bob"}
    spans = [(e.decoded("dtstart"), e.decoded("dtend")) for e in events]
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))  # no gaps
    code, _, err = cli("user", "delete", "alice", "--yes")
    assert code == 2 and "schedule primary" in err and "\n" not in err.strip()


def test_team_commands(cli: Run, tmp_path: Path) -> None:
    assert cli("team", "create", "sre", "--member", "alice")[0] == 0
    assert cli("team", "add", "sre", "bob")[0] == 0
    assert cli("team", "remove", "sre", "alice")[0] == 0
    code, out, _ = cli("team", "list", "--json")
    assert [(t["name"], t["members"]) for t in json.loads(out)] == [("sre", ["bob"])]
    policy = {"name": "sre", "steps": [{"targets": [{"kind": "team", "ref": "sre"}]}]}
    (tmp_path / "p.json").write_text(json.dumps(policy))
    assert cli("escalation", "create", str(tmp_path / "p.json"))[0] == 0
    code, _, err = cli("team", "delete", "sre")
    assert code == 2 and "policies: sre" in err and "\n" not in err.strip()
    assert cli("escalation", "delete", "sre")[0] == 0
    assert cli("team", "delete", "sre")[0] == 0


def test_incident_commands(cli: Run, tmp_path: Path) -> None:
    engine = make_engine(Settings(data_dir=tmp_path / "data"))
    factory = make_session_factory(engine)
    with factory() as session, session.begin():
        e1 = engines.add_engine(
            session, data=EngineCreate(name="e1", url="http://127.0.0.1:9"), actor="t"
        )
        rollout = rollouts.start_rollout(
            session,
            engine_id=e1.id,
            from_config_id=None,
            to_config_id=None,
            reason="manual",
            actor="t",
        ).id
    GuardAlerts(factory)(GuardEvent("rollout.rolled_back", "e1", 4, "p99 over the SLO"))
    engine.dispose()
    code, out, err = cli("incident", "list", "--open", "--json")
    assert code == 0, err
    (incident,) = json.loads(out)
    ref = str(incident["id"])
    assert cli("incident", "ack", ref)[1].strip() == f"incident {ref} acknowledged"
    assert cli("incident", "note", ref, "rolled back by the guard; watching")[0] == 0
    code, out, _ = cli("incident", "show", ref)
    assert "acknowledged" in out and "watching" in out and "cli:" in out
    assert f"rollout #{rollout:<6} pending      manual" in out
    code, out, _ = cli("incident", "show", ref, "--json")
    assert [r["id"] for r in json.loads(out)["rollouts"]] == [rollout]
    assert cli("incident", "resolve", ref)[1].strip() == f"incident {ref} resolved"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("oncall", "route", "add", "r", "--match", "sev=~(x"), "matcher 'sev=~(x'"),
        (("oncall", "who", "--at", "tomorrow"), "at:"),
        (
            ("oncall", "contact", "add", "alice", "m", "--kind", "email", "--address", "x"),
            "address",
        ),
        (("incident", "snooze", "1", "soon"), "duration"),
        (("incident", "ack", "0"), "incident_id"),
        (("team", "create", "sre", "--member", "nobody"), "members[0]"),
        (("incident", "show", "1", "--before", "soon"), "before"),
        (("user", "timezone", "alice", "Mars/Olympus"), "timezone"),
    ],
)
def test_bad_input_exits_2_with_one_line(cli: Run, args: tuple[str, ...], needle: str) -> None:
    code, _, err = cli(*args)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
