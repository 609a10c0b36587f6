"""``cplane engine apply`` against a real engine: exit 0 committed, 1 rolled back, 2 refused."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.controlplane.guard.conftest import Load
from tests.fixtures.cli import Run
from tests.fixtures.engines import RunningEngine

FAST_GUARD = {
    "CP_GUARD__BASELINE_S": "0.5",
    "CP_GUARD__WARMUP_S": "0.2",
    "CP_GUARD__INTERVAL_S": "0.2",
    "CP_GUARD__NO_DATA_TIMEOUT_S": "0.5",
    "CP_GUARD__HEARTBEAT_S": "0.3",
}


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Run:
    monkeypatch.delenv("CP_DATABASE_URL", raising=False)
    monkeypatch.setenv("CP_DATA_DIR", str(tmp_path / "data"))
    for key, value in FAST_GUARD.items():
        monkeypatch.setenv(key, value)
    return Run(capsys)


def _batch(engine: RunningEngine) -> int:
    headers = {"Authorization": f"Bearer {engine.admin_token}"}
    return int(httpx.get(f"{engine.url}/admin/config", headers=headers).json()["max_batch_size"])


def test_apply_exit_codes(cli: Run, reference_engine: RunningEngine) -> None:
    cli("db", "upgrade")
    url, token = reference_engine.url, reference_engine.admin_token
    assert cli("engine", "add", "ref", "--url", url, "--admin-token", token)[0] == 0
    assert cli("slo", "set", "ref", "p99_s<=10")[0] == 0
    before = _batch(reference_engine)
    target = 4 if before != 4 else 2

    code, _out, err = cli("engine", "apply", "ref", "max_batch_size=0")
    assert code == 2 and err.startswith("cplane: error:") and _batch(reference_engine) == before
    code, _out, err = cli("engine", "apply", "ref", "max_batch_size=4", "--bake", "soon")
    assert code == 2 and "duration" in err

    code, out, _err = cli("engine", "apply", "ref", f"max_batch_size={target}", "--dry-run")
    assert code == 0 and '"rollout_id": null' in out and _batch(reference_engine) == before

    load = Load(url, concurrency=2, duration_s=6)
    code, out, _err = cli("engine", "apply", "ref", f"max_batch_size={target}", "--bake", "2s")
    load.join()
    assert code == 0, out
    assert "committed" in out.splitlines()[-1] and _batch(reference_engine) == target

    # No traffic at all: inconclusive, rolled back to the config just committed.
    code, out, _err = cli("engine", "apply", "ref", f"max_batch_size={before}", "--bake", "1s")
    assert code == 1 and "rolled_back" in out.splitlines()[-1]
    assert _batch(reference_engine) == target
    cli("engine", "remove", "ref", "--yes")
    # The engine is shared by the session: leave it as it was found.
    headers = {"Authorization": f"Bearer {token}"}
    httpx.put(f"{url}/admin/config", json={"max_batch_size": before}, headers=headers)
