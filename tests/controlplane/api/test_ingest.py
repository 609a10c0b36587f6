from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy import func
from sqlalchemy import select

from controlplane.domain import Role
from controlplane.store.models import SampleRow
from tests.fixtures.api import TokenMaker


def _count(db_engine: Engine) -> int:
    with db_engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(SampleRow)).scalar() or 0)


def _row(i: int) -> dict[str, object]:
    return {
        "ts": 1_800_000_000.0 + i,
        "source": "gpu-node",
        "metric": "gpu_power_watts",
        "labels": {"gpu": "0"},
        "value": float(i),
    }


def test_ingest_is_idempotent(client: TestClient, auth: TokenMaker, db_engine: Engine) -> None:
    headers = {**auth(Role.operator), "Idempotency-Key": "batch-0001"}
    body = {"samples": [_row(i) for i in range(100)]}
    r = client.post("/api/v1/ingest", json=body, headers=headers)
    assert r.status_code == 200 and r.json() == {"stored": 100, "duplicate": False}
    r = client.post("/api/v1/ingest", json=body, headers=headers)
    assert r.json() == {"stored": 0, "duplicate": True}
    assert _count(db_engine) == 100


def test_bad_row_is_422_naming_it_and_nothing_is_stored(
    client: TestClient, auth: TokenMaker, db_engine: Engine
) -> None:
    rows = [_row(i) for i in range(10)]
    rows[7]["value"] = "NaN"
    headers = {**auth(Role.operator), "Idempotency-Key": "batch-0002"}
    r = client.post("/api/v1/ingest", json={"samples": rows}, headers=headers)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "samples", 7, "value"]
    rows[7] = _row(7)
    rows[3]["ts"] = 1_800_000_000_000.0  # milliseconds by mistake
    r = client.post("/api/v1/ingest", json={"samples": rows}, headers=headers)
    assert r.json()["detail"][0]["loc"] == ["body", "samples", 3, "ts"]
    assert _count(db_engine) == 0
    # The key of a refused batch was not consumed.
    rows[3] = _row(3)
    assert (
        client.post("/api/v1/ingest", json={"samples": rows}, headers=headers).json()["stored"]
        == 10
    )


def test_ingest_needs_an_operator_and_a_key(client: TestClient, auth: TokenMaker) -> None:
    body = {"samples": [_row(0)]}
    r = client.post(
        "/api/v1/ingest", json=body, headers={**auth(Role.viewer), "Idempotency-Key": "k-viewer1"}
    )
    assert r.status_code == 403
    r = client.post("/api/v1/ingest", json=body, headers=auth(Role.operator))
    assert r.status_code == 422


def test_metrics_endpoint_is_public_and_passes_promtool(
    client: TestClient, tmp_path: Path
) -> None:
    r = client.get("/metrics")
    assert r.status_code == 200
    assert "cplane_sink_dropped_samples_total" in r.text
    assert "cplane_gpu_collector_enabled" in r.text
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CP_TEST_REQUIRE_PROMTOOL"):
            pytest.fail("promtool not found")
        pytest.skip("promtool not installed")
    out = subprocess.run([promtool, "check", "metrics"], input=r.content, capture_output=True)
    assert out.returncode == 0, out.stdout.decode() + out.stderr.decode()
