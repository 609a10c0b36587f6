"""The quality guard on a real reference engine process (real PyTorch): record at fp32,
check every other precision (the measured agreement of each is printed and kept in the
test's report), bad input refused with exit 2, and a weight-perturbation fault that makes
the guard roll a precision change back for quality while latency is fine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from controlplane.domain.quality import probe_set_jsonl
from controlplane.guard.quality import default_probe_set
from tests.controlplane.guard.conftest import Load
from tests.fixtures.cli import Run
from tests.fixtures.engines import RunningEngine
from tests.fixtures.engines import start_engine

pytestmark = pytest.mark.slow

FAST_GUARD = {
    "CP_GUARD__BASELINE_S": "0.5",
    "CP_GUARD__WARMUP_S": "0.2",
    "CP_GUARD__INTERVAL_S": "0.2",
    "CP_GUARD__NO_DATA_TIMEOUT_S": "5",
    "CP_GUARD__HEARTBEAT_S": "0.3",
}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    """Its own engine: these tests perturb weights and switch precisions."""
    running = start_engine(tmp_path_factory.mktemp("quality-engine"))
    yield running
    running.stop()


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Run:
    monkeypatch.delenv("CP_DATABASE_URL", raising=False)
    monkeypatch.setenv("CP_DATA_DIR", str(tmp_path / "data"))
    for key, value in FAST_GUARD.items():
        monkeypatch.setenv(key, value)
    return Run(capsys)


def _admin(engine: RunningEngine, method: str, path: str, body: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {engine.admin_token}"}
    response = httpx.request(
        method, f"{engine.url}{path}", json=body, headers=headers, timeout=120
    )
    assert response.status_code == 200, response.text
    return response.json()


def _check(cli: Run) -> dict[str, Any]:
    code, out, err = cli("quality", "check", "ref", "--json", "--worst", "32")
    assert code in (0, 1), err
    return json.loads(out)  # type: ignore[no-any-return]


def _precisions(engine: RunningEngine) -> list[str]:
    knobs = _admin(engine, "GET", "/admin/search-space")["knobs"]
    return next(k["choices"] for k in knobs if k["name"] == "precision")  # type: ignore[no-any-return]


def test_record_at_fp32_and_check_each_precision(
    cli: Run, engine: RunningEngine, tmp_path: Path, record_property: Any
) -> None:
    assert cli("db", "upgrade")[0] == 0
    code, _, _ = cli(
        "engine", "add", "ref", "--url", engine.url, "--admin-token", engine.admin_token
    )
    assert code == 0
    # Nothing recorded yet: refused, naming the problem.
    code, _, err = cli("quality", "check", "ref")
    assert code == 2 and "no recorded reference answers" in err
    code, _, err = cli("slo", "set", "ref", "quality>=0.98")
    assert code == 2 and "no recorded reference answers" in err
    # A probe set that is not JSONL, or empty; a config the engine does not serve.
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\nnot json\n')
    code, _, err = cli("quality", "record", "ref", "--prompts", str(bad))
    assert code == 2 and "line 2 is not JSON" in err
    bad.write_text("\n\n")
    code, _, err = cli("quality", "record", "ref", "--prompts", str(bad))
    assert code == 2 and "empty" in err
    code, _, err = cli("quality", "record", "ref", "--config", "precision=int8")
    assert code == 2 and "serves precision='fp32'" in err
    code, _, err = cli("slo", "set", "ref", "quality<=0.98")
    assert code == 2 and "'>='" in err
    assert cli("quality", "check", "ref")[0] == 2  # still nothing recorded

    code, out, err = cli("quality", "record", "ref", "--config", "precision=fp32")
    assert code == 0, err
    assert "recorded 32 reference answers" in out
    same = _check(cli)
    assert (same["exact"], same["agreement"], same["diverged"]) == (1.0, 1.0, 0)
    code, text, _ = cli("quality", "check", "ref")
    assert code == 0 and "agreement 1.0000  exact 1.0000" in text and "0 of 32" in text
    assert same["kl"] is not None and same["kl"] < 1e-6

    measured: dict[str, dict[str, Any]] = {}
    for precision in _precisions(engine):
        if precision == "fp32":
            continue
        _admin(engine, "PUT", "/admin/config", {"precision": precision})
        result = _check(cli)
        if result["diverged"]:
            code, text, _ = cli("quality", "check", "ref", "--worst", "1")
            assert code == 0 and "diverged at token" in text  # no spec set: exit 0
        measured[precision] = {k: result[k] for k in ("exact", "agreement", "kl", "nll_delta")}
        assert 0.0 <= result["exact"] <= result["agreement"] <= 1.0
        assert result["kl"] > 0  # another precision moves the distributions, if not argmaxes
        for prompt in result["worst"]:
            assert prompt["diverged_at"] is None or prompt["expected"] != prompt["got"]
    _admin(engine, "PUT", "/admin/config", {"precision": "fp32"})
    print(f"measured agreement against fp32: {json.dumps(measured)}")
    record_property("quality_vs_fp32", json.dumps(measured))


def test_perturbed_weights_roll_a_precision_change_back_for_quality(
    cli: Run, engine: RunningEngine, tmp_path: Path
) -> None:
    assert cli("db", "upgrade")[0] == 0
    code, _, _ = cli(
        "engine", "add", "ref", "--url", engine.url, "--admin-token", engine.admin_token
    )
    assert code == 0
    assert cli("slo", "set", "ref", "p99_s<=10")[0] == 0
    # A third of the shipped set keeps the bake short; the measures are the same.
    prompts = tmp_path / "probe.jsonl"
    shipped = probe_set_jsonl(default_probe_set()).splitlines(keepends=True)
    prompts.write_text("".join(shipped[::3]))
    assert cli("quality", "record", "ref", "--prompts", str(prompts))[0] == 0
    candidates = [p for p in _precisions(engine) if p != "fp32"]
    target = "fp16" if "fp16" in candidates else candidates[0]
    # How faithful the clean target precision is, measured here; the spec sits below it, so
    # only the fault can make the change fail.
    _admin(engine, "PUT", "/admin/config", {"precision": target})
    clean = _check(cli)["agreement"]
    _admin(engine, "PUT", "/admin/config", {"precision": "fp32"})
    threshold = max(0.05, round(clean - 0.15, 3))
    assert cli("slo", "set", "ref", f"quality>={threshold}")[0] == 0

    _admin(
        engine, "PUT", "/admin/faults", {"weight_noise": 0.2, "weight_noise_precisions": [target]}
    )
    try:
        load = Load(engine.url, concurrency=2, duration_s=10)
        code, out, _ = cli("engine", "apply", "ref", f"precision={target}", "--bake", "2s")
        load.join()
        assert code == 1 and "rolled_back" in out.splitlines()[-1], out
        rollout_id = json.loads(out[: out.rindex("}") + 1])["rollout_id"]
        code, shown, _ = cli("rollout", "show", str(rollout_id))
        verdict = json.loads(shown)["evidence"]["verdict"]
        assert verdict["outcome"] == "quality", verdict
        quality = verdict["quality"]
        assert quality["passed"] is False and quality["agreement"] < threshold
        assert quality["worst"] and all(
            isinstance(p["diverged_at"], int) for p in quality["worst"]
        )
        # Latency was fine: no SLO decision breached before the probe's verdict.
        decisions = json.loads(shown)["evidence"].get("decisions", [])
        assert all(d["verdict"] != "breach" for d in decisions)
        assert _admin(engine, "GET", "/admin/config")["precision"] == "fp32"
    finally:
        _admin(engine, "DELETE", "/admin/faults")
    # The same change with clean weights holds its spec and commits.
    load = Load(engine.url, concurrency=2, duration_s=10)
    code, out, _ = cli("engine", "apply", "ref", f"precision={target}", "--bake", "2s")
    load.join()
    assert code == 0 and "committed" in out.splitlines()[-1], out
    _admin(engine, "PUT", "/admin/config", {"precision": "fp32"})
