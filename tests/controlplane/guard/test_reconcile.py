"""Crash safety, for real: the control plane is SIGKILLed while a change bakes; when it
starts again, the engine is put back on its last known good config."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.cli import ControlPlane
from tests.fixtures.cli import run_cplane
from tests.fixtures.engines import RunningEngine
from tests.fixtures.engines import free_port
from tests.fixtures.engines import start_engine


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[RunningEngine]:
    e = start_engine(tmp_path, "--batch-size", "8")
    yield e
    e.stop()


@pytest.mark.slow
def test_sigkill_mid_bake_then_restart_puts_the_engine_back_on_lkg(
    tmp_path: Path, engine: RunningEngine
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CP_")},
        "CP_DATA_DIR": str(tmp_path / "cp"),
        "CP_GUARD__BASELINE_S": "0.5",
        "CP_GUARD__STALE_AFTER_S": "2",
        "CP_GUARD__HEARTBEAT_S": "0.3",
    }
    run_cplane(env, "db", "upgrade")
    run_cplane(env, "user", "create", "ops", "--admin")
    token = run_cplane(env, "token", "create", "ops")
    run_cplane(
        env, "engine", "add", "ref", "--url", engine.url, "--admin-token", engine.admin_token
    )
    run_cplane(env, "slo", "set", "ref", "p99_s<=10")
    headers = {"Authorization": f"Bearer {token}"}
    admin = {"Authorization": f"Bearer {engine.admin_token}"}

    cp = ControlPlane(env, free_port())
    cp.start()
    try:
        response = httpx.post(
            f"{cp.url}/api/v1/engines/ref/rollouts",
            json={"changes": {"max_batch_size": 2}, "bake_s": 300},
            headers=headers,
        )
        assert response.status_code == 202, response.text
        rollout_id = response.json()["rollout_id"]

        def baking() -> bool:
            body = httpx.get(f"{cp.url}/api/v1/rollouts/{rollout_id}", headers=headers).json()
            return bool(body["state"] == "baking")

        _wait(baking, 30, "the rollout to bake")
        assert httpx.get(f"{engine.url}/admin/config", headers=admin).json()["max_batch_size"] == 2
        cp.kill()  # no shutdown hook runs: the change is left unguarded

        cp.start()

        def settled() -> dict[str, Any] | None:
            body = httpx.get(f"{cp.url}/api/v1/rollouts/{rollout_id}", headers=headers).json()
            return body if body["state"] not in ("pending", "applying", "baking") else None

        final = _wait(settled, 30, "reconcile")
        assert final["state"] == "rolled_back"
        assert final["evidence"]["reconciled"]["restored"] is True
        assert final["evidence"]["reconciled"]["found_in"] == "baking"
        assert httpx.get(f"{engine.url}/admin/config", headers=admin).json()["max_batch_size"] == 8
    finally:
        cp.stop()
