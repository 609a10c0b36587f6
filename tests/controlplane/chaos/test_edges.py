"""The edges: ``cplane chaos`` and ``/api/v1/chaos``. Bad input is one line (exit 2) or a
422 with nothing applied and nothing recorded; only admins run experiments; every run is
recorded with its mechanism and counters and lands in the audit log; abort works from
another caller while the run is in flight."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from controlplane.api.app import create_app
from controlplane.chaos import Topology
from controlplane.chaos import probe
from controlplane.chaos import root_qdisc
from controlplane.domain import Role
from controlplane.settings import ChaosSettings
from controlplane.settings import Settings
from controlplane.store import audit
from controlplane.store import schema
from controlplane.store import users
from controlplane.store.database import make_engine
from controlplane.store.database import make_session_factory
from controlplane.store.database import unit_of_work
from tests.controlplane.chaos.conftest import Procs
from tests.controlplane.chaos.conftest import wait_for
from tests.fixtures.cli import Run

pytestmark = pytest.mark.netns


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Run:
    monkeypatch.delenv("CP_DATABASE_URL", raising=False)
    monkeypatch.setenv("CP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CP_CHAOS__TTL_GRACE_S", "1")
    run = Run(capsys)
    assert run("db", "upgrade")[0] == 0
    return run


MISSING = "netns:cpt-missing-ns"


@pytest.mark.parametrize(
    ("target", "fault", "duration", "needle"),
    [
        (MISSING, "delay fast", "1s", "is not a time"),
        (MISSING, "delay 5ms", "-5s", "is not a duration"),
        ("host:eth0", "rate 1mbit", "1s", "not on the allowlist"),
        (MISSING, "rate 1mbit", "1s", "does not exist"),
    ],
)
def test_cli_bad_input_is_one_line_and_applies_nothing(
    cli: Run, netns_ok: None, tmp_path: Path, target: str, fault: str, duration: str, needle: str
) -> None:
    code, out, err = cli(
        "chaos", "run", "--target", target, "--fault", fault, f"--duration={duration}"
    )
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and needle in err, err
    assert cli("chaos", "list", "--json")[1].strip() == "[]"
    assert not list((tmp_path / "data" / "chaos").glob("*.json"))


def test_cli_refuses_what_this_kernel_cannot_do(cli: Run, topo: Topology) -> None:
    if probe().netem:
        pytest.skip("this kernel has sch_netem: duplicate runs for real")
    target = f"netns:{topo.server}"
    code, _, err = cli("chaos", "run", "--target", target, "--fault", "duplicate 1%")
    assert code == 2 and "duplicate needs sch_netem" in err
    assert root_qdisc(topo.server, topo.server_dev)["kind"] == "noqueue"  # type: ignore[index]


def test_cli_run_records_mechanism_counters_and_audit(
    cli: Run, topo: Topology, procs: Procs, tmp_path: Path
) -> None:
    procs.start(topo.server, "echo", "9200")
    target = f"netns:{topo.server}:9200"
    code, out, err = cli(
        "chaos",
        "run",
        "--target",
        target,
        "--fault",
        "delay 20ms loss 1%",
        "--duration",
        "1s",
        "--json",
    )
    assert code == 0, err
    body = json.loads(out[out.index("{") :])
    assert body["state"] == "completed" and body["mechanisms"]
    assert body["result"]["held_s"] >= 1.0
    assert "counters_after" in body["result"] and body["result"]["cleanup_log"]
    # No engine named: nothing says what the fault cost, and both views say so.
    assert body["failed_requests"] is None and body["slo_violation_s"] is None
    code, out, _ = cli("chaos", "show", str(body["id"]), "--json")
    assert code == 0 and json.loads(out)["id"] == body["id"]
    code, out, _ = cli("chaos", "show", str(body["id"]))
    assert code == 0 and f"experiment {body['id']}: completed" in out
    assert "cost not measured (no engine named)" in out
    code, _, err = cli("chaos", "abort", str(body["id"]))
    assert code == 2 and "nothing to abort" in err
    code, out, _ = cli("chaos", "probe")
    assert code == 0 and set(json.loads(out)) >= {"netem", "htb", "tbf", "nft_numgen"}
    with unit_of_work(make_session_factory(_engine(tmp_path))) as s:
        actions = [e.action for e in audit.list_events(s, target_type="chaos_experiment")]
    assert actions == ["chaos.completed", "chaos.start"]
    assert root_qdisc(topo.server, topo.server_dev)["kind"] == "noqueue"  # type: ignore[index]


def _engine(tmp_path: Path) -> Engine:
    return make_engine(Settings(data_dir=tmp_path / "data"))


# -- API ---------------------------------------------------------------------------------------


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, Engine]]:
    settings = Settings(data_dir=tmp_path, chaos=ChaosSettings(ttl_grace_s=1.0))
    engine = make_engine(settings)
    schema.upgrade(engine)
    app = create_app(settings, db_engine=engine)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, engine
    engine.dispose()


def _headers(engine: Engine, role: Role) -> dict[str, str]:
    with unit_of_work(make_session_factory(engine)) as s:
        user = users.create_user(s, name=f"u-{role.value}", role=role, actor="t")
        _row, secret = users.create_token(s, user=user, name="t", ttl=None, actor="t")
    return {"Authorization": f"Bearer {secret}"}


URL = "/api/v1/chaos/experiments"


def test_api_only_admins_and_bad_input_is_422(
    api: tuple[TestClient, Engine], netns_ok: None
) -> None:
    client, engine = api
    body: dict[str, Any] = {"target": "netns:cpt-nope", "fault": "delay 5ms", "duration_s": 1}
    operator = _headers(engine, Role.operator)
    assert client.post(URL, json=body, headers=operator).status_code == 403
    assert client.get(URL, headers=operator).status_code == 403
    admin = _headers(engine, Role.admin)
    for bad, field in (
        ({**body, "fault": "delay"}, "fault"),
        ({**body, "duration_s": -5}, "duration_s"),
        ({**body, "target": "host:eth0"}, "target"),
        (body, "target"),
    ):
        res = client.post(URL, json=bad, headers=admin)
        assert res.status_code == 422, res.text
        assert field in json.dumps(res.json()["detail"])
    assert client.get(URL, headers=admin).json() == []


def test_api_run_and_abort(api: tuple[TestClient, Engine], topo: Topology) -> None:
    client, engine = api
    admin = _headers(engine, Role.admin)
    body = {"target": f"netns:{topo.server}", "fault": "rate 5mbit", "duration_s": 30}
    res = client.post(URL, json=body, headers=admin)
    assert res.status_code == 202, res.text
    exp = res.json()
    assert exp["state"] == "running" and exp["mechanisms"]
    assert root_qdisc(topo.server, topo.server_dev)["kind"] != "noqueue"  # type: ignore[index]
    res = client.post(f"{URL}/{exp['id']}/abort", headers=admin)
    assert res.status_code == 200 and res.json()["state"] == "aborted"
    assert root_qdisc(topo.server, topo.server_dev)["kind"] == "noqueue"  # type: ignore[index]

    def recorded() -> bool:
        got = client.get(f"{URL}/{exp['id']}", headers=admin).json()
        return bool(got["result"].get("cleanup_s") is not None)

    wait_for(recorded, timeout=5, what="the run to record its result")
    assert client.post(f"{URL}/{exp['id']}/abort", headers=admin).status_code == 409
    with unit_of_work(make_session_factory(engine)) as s:
        actions = {e.action for e in audit.list_events(s, target_type="chaos_experiment")}
    assert {"chaos.start", "chaos.abort"} <= actions
    time.sleep(0.1)
