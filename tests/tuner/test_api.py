"""Tuning runs over HTTP against a real engine: start (202, runs in the server), inspect the
run and its trials, and see it recorded; stop and resume answer for finished runs too."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from controlplane.api.app import create_app
from controlplane.domain import Role
from controlplane.settings import Settings
from tests.fixtures.api import TokenMaker
from tests.fixtures.engines import RunningEngine
from tests.fixtures.engines import start_engine
from tests.tuner.conftest import FAST_GUARD
from tests.tuner.conftest import FAST_TUNER


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[RunningEngine]:
    e = start_engine(tmp_path, "--batch-size", "4")
    yield e
    e.stop()


@pytest.fixture
def fast_client(db_engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    url = db_engine.url.render_as_string(hide_password=False)
    settings = Settings(database_url=url, data_dir=tmp_path, guard=FAST_GUARD, tuner=FAST_TUNER)
    with TestClient(create_app(settings, db_engine=db_engine)) as c:
        yield c


def test_start_inspect_and_stop_a_run(
    fast_client: TestClient, auth: TokenMaker, engine: RunningEngine
) -> None:
    client = fast_client
    op = auth(Role.operator)
    body = {"name": "ref", "url": engine.url, "admin_token": engine.admin_token}
    assert client.post("/api/v1/engines", json=body, headers=op).status_code == 201
    client.put("/api/v1/engines/ref/slos", json={"spec": "p99_ms<=5000"}, headers=op)
    request = {"load": "concurrency=4", "trials": 1, "knobs": ["max_batch_size"], "seed": 1}
    started = client.post("/api/v1/engines/ref/tuning-runs", json=request, headers=op)
    assert started.status_code == 202, started.text
    run = started.json()
    assert run["state"] == "pending" and run["spec"]["default_config"]["max_batch_size"] == 4
    again = client.post("/api/v1/engines/ref/tuning-runs", json=request, headers=op)
    assert again.status_code == 409
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        current = client.get(f"/api/v1/tuning-runs/{run['id']}", headers=op).json()
        if current["state"] in ("done", "failed"):
            break
        time.sleep(0.3)
    assert current["state"] == "done", current
    assert current["result"]["best"]["params"] == {"max_batch_size": 4}
    assert "nothing to apply" in current["result"]["note"]
    trials = client.get(f"/api/v1/tuning-runs/{run['id']}/trials", headers=op).json()
    assert [(t["kind"], t["state"]) for t in trials] == [("baseline", "complete")]
    assert trials[0]["goodput"] > 0 and trials[0]["feasible"] is True
    listed = client.get("/api/v1/tuning-runs?engine=ref", headers=op).json()
    assert [r["id"] for r in listed] == [run["id"]]
    stop = client.post(f"/api/v1/tuning-runs/{run['id']}/stop", headers=op)
    assert stop.status_code == 409  # it has finished
    resume = client.post(f"/api/v1/tuning-runs/{run['id']}/resume", headers=op)
    assert resume.status_code == 409
