"""``cplane alerts list / show`` on a store holding alerts; bad input exits 2 with one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from controlplane.guard import GuardEvent
from controlplane.guard.alerting import GuardAlerts
from controlplane.schemas.engines import EngineCreate
from controlplane.store import engines
from controlplane.store.database import make_session_factory
from tests.fixtures.cli import Run


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Run:
    monkeypatch.delenv("CP_DATABASE_URL", raising=False)
    monkeypatch.setenv("CP_DATA_DIR", str(tmp_path / "data"))
    run = Run(capsys)
    assert run("db", "upgrade")[0] == 0
    db = create_engine(f"sqlite:///{tmp_path / 'data' / 'controlplane.db'}")
    factory = make_session_factory(db)
    with factory() as session, session.begin():
        engines.add_engine(
            session, data=EngineCreate(name="e1", url="http://127.0.0.1:9"), actor="t"
        )
    GuardAlerts(factory)(GuardEvent("rollout.rolled_back", "e1", 4, "p99 over the SLO"))
    db.dispose()
    return run


def test_list_and_show(cli: Run) -> None:
    code, out, err = cli("alerts", "list", "--json")
    assert code == 0, err
    listed = json.loads(out)
    assert [(a["alertname"], a["status"], a["engine"]) for a in listed] == [
        ("EngineRolledBack", "firing", "e1")
    ]
    code, out, _ = cli("alerts", "list", "--status", "resolved", "--json")
    assert json.loads(out) == []
    code, out, _ = cli("alerts", "list")
    assert code == 0 and "EngineRolledBack" in out
    code, out, _ = cli("alerts", "show", str(listed[0]["id"]))
    detail = json.loads(out)
    assert code == 0 and [e["status"] for e in detail["events"]] == ["firing"]
    assert detail["annotations"]["summary"] == "p99 over the SLO"


@pytest.mark.parametrize(
    "args",
    [
        ("alerts", "list", "--status", "open"),
        ("alerts", "list", "--engine", "nope"),
        ("alerts", "show", "999"),
        ("alerts", "show", "x"),
    ],
)
def test_bad_input_is_one_line(cli: Run, args: tuple[str, ...]) -> None:
    code, _out, err = cli(*args)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
