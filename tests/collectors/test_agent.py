"""Agent mode with real processes: a control plane (collectors off, so only the agent can
fill its store), a reference engine, and ``cplane agent`` pushing what it scrapes."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.fixtures.cli import CPLANE
from tests.fixtures.cli import ControlPlane
from tests.fixtures.cli import run_cplane
from tests.fixtures.engines import RunningEngine
from tests.fixtures.engines import free_port


@pytest.mark.slow
def test_agent_pushes_engine_series_to_the_control_plane(
    tmp_path: Path, reference_engine: RunningEngine
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CP_")},
        "CP_DATA_DIR": str(tmp_path / "cp"),
        "CP_COLLECTORS__ENABLED": "false",
    }
    run_cplane(env, "db", "upgrade")
    run_cplane(env, "user", "create", "agent-bot", "--role", "operator")
    token = run_cplane(env, "token", "create", "agent-bot")
    run_cplane(env, "engine", "add", "ref", "--url", reference_engine.url)
    cp = ControlPlane(env, free_port())
    cp.start()
    agent_env = {
        **env,
        "CP_DATA_DIR": str(tmp_path / "agent"),  # the agent has no store of its own
        "CP_COLLECTORS__SCRAPE_INTERVAL_S": "0.5",
        "CP_COLLECTORS__FLUSH_INTERVAL_S": "0.5",
        "CP_COLLECTORS__GPU": "false",
    }
    agent = subprocess.Popen(
        [CPLANE, "agent", "--server", cp.url, "--token", token],
        env=agent_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(5):
            httpx.post(
                f"{reference_engine.url}/v1/completions",
                json={"model": "tiny", "prompt": "hi", "max_tokens": 2},
                timeout=30,
            ).raise_for_status()
        headers = {"Authorization": f"Bearer {token}"}
        deadline = time.monotonic() + 45
        total = 0.0
        while time.monotonic() < deadline:
            assert agent.poll() is None, "agent exited"
            response = httpx.get(
                f"{cp.url}/api/v1/series",
                params={"engine": "ref", "metric": "requests_succeeded_total", "step": 1},
                headers=headers,
                timeout=10,
            )
            assert response.status_code == 200, response.text
            # Cumulative successes, summed over finish reasons, at the newest point.
            series = response.json()["series"]
            total = sum(s["points"][-1][1] for s in series if s["points"])
            if total >= 5:
                break
            time.sleep(0.5)
        assert total >= 5, f"the control plane saw {total} of 5 requests"
    finally:
        agent.terminate()
        agent.wait(timeout=15)
        cp.stop()
