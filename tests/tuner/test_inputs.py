"""Bad input at both edges: one line and exit code 2 from ``cplane tune``, 422 / 404 / 409
from the API, and in every case no tuning run recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy import func
from sqlalchemy import select

from controlplane.cli.main import main
from controlplane.domain import Role
from controlplane.settings import Settings
from controlplane.store import engines
from controlplane.store import rollouts
from controlplane.store.database import make_engine
from controlplane.store.database import make_session_factory
from controlplane.store.database import unit_of_work
from controlplane.store.models import TuningRunRow
from tests.fixtures.api import TokenMaker


def _runs(engine: Engine) -> int:
    with make_session_factory(engine)() as s:
        return int(s.scalar(select(func.count()).select_from(TuningRunRow)) or 0)


def _busy(engine: Engine, name: str) -> None:
    with unit_of_work(make_session_factory(engine)) as s:
        row = engines.get_engine(s, name)
        rollouts.start_rollout(
            s, engine_id=row.id, from_config_id=None, to_config_id=None, reason="manual",
            actor="t",
        )  # fmt: skip


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    _out, err = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 1), err


def test_cli_refuses_bad_input_with_one_line_and_starts_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CP_DATABASE_URL", raising=False)
    monkeypatch.setenv("CP_DATA_DIR", str(tmp_path / "data"))
    assert _cli(capsys, "db", "upgrade")[0] == 0
    assert _cli(capsys, "engine", "add", "llm", "--url", "http://127.0.0.1:9")[0] == 0
    assert _cli(capsys, "slo", "set", "llm", "p99_ms<=500")[0] == 0
    cases = [
        (["--slo", "p99<=fast"], "cannot parse SLO"),
        (["--load", "rate=fast"], "cannot parse load"),
        (["--load", "rate=4,concurrency=2"], "exactly one of"),
        (["--trials", "0"], "trials"),
        (["--objective", "speed"], "objective"),
        (["--objective", "capacity"], "slo: the capacity objective needs a latency SLO"),
        (["--objective", "capacity", "--slo", "p99_ms<=300", "--load", "live"], "load:"),
    ]
    for extra, needle in cases:
        code, err = _cli(capsys, "tune", "llm", *extra)
        assert code == 2 and err.count("\n") == 1 and needle in err, (extra, err)
    code, err = _cli(capsys, "tune", "nope", "--slo", "p99_ms<=300")
    assert code == 2 and "engine 'nope' not found" in err
    store = make_engine(Settings(data_dir=tmp_path / "data"))
    try:
        _busy(store, "llm")
        code, err = _cli(capsys, "tune", "llm", "--slo", "p99_ms<=300", "--load", "rate=40")
        assert code == 2 and err.count("\n") == 1 and "busy" in err
        assert _runs(store) == 0
    finally:
        store.dispose()
    code, err = _cli(capsys, "tuning", "show", "7")
    assert code == 2 and "tuning run 7 not found" in err


def test_api_refuses_bad_input_and_busy_engines(
    client: TestClient, auth: TokenMaker, db_engine: Engine
) -> None:
    op = auth(Role.operator)
    body = {"name": "llm", "url": "http://127.0.0.1:9"}
    assert client.post("/api/v1/engines", json=body, headers=op).status_code == 201
    assert client.put(
        "/api/v1/engines/llm/slos", json={"spec": "p99_ms<=500"}, headers=op
    ).status_code in (200, 201)
    url = "/api/v1/engines/llm/tuning-runs"
    for bad, field in [
        ({"slo": ["p99<=fast"]}, "slo"),
        ({"load": "rate=x"}, "load"),
        ({"trials": 0}, "trials"),
        ({"objective": "speed"}, "objective"),
        ({"surprise": 1}, "surprise"),
    ]:
        response = client.post(url, json=bad, headers=op)
        assert response.status_code == 422, (bad, response.text)
        assert field in str(response.json()["detail"][0]["loc"])
    missing = client.post("/api/v1/engines/nope/tuning-runs", json={}, headers=op)
    assert missing.status_code == 404
    viewer = auth(Role.viewer)
    assert client.post(url, json={}, headers=viewer).status_code == 403
    _busy(db_engine, "llm")
    busy = client.post(url, json={"trials": 3}, headers=op)
    assert busy.status_code == 409 and "busy" in busy.json()["detail"]
    assert _runs(db_engine) == 0
    assert client.get("/api/v1/tuning-runs", headers=viewer).json() == []
    assert client.get("/api/v1/tuning-runs/5", headers=viewer).status_code == 404
    assert client.post("/api/v1/tuning-runs/5/stop", headers=op).status_code == 404
    assert client.get("/api/v1/tuning-runs", headers={}).status_code == 401
