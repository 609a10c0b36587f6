"""A tuning run with a quality spec on a real engine whose reduced precisions serve
perturbed weights (the engine's weight-noise fault): every such trial is rolled back for
quality and infeasible, the best config is a faithful one, and nothing that failed the probe
is ever applied."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from controlplane.domain import EngineTarget
from controlplane.engines import adapter_for
from controlplane.guard import quality as probe
from controlplane.settings import Settings
from controlplane.store import quality as quality_store
from controlplane.store import rollouts
from controlplane.store.database import SessionFactory
from controlplane.store.database import unit_of_work
from tests.fixtures.db import SQLITE_ONLY
from tests.fixtures.engines import RunningEngine
from tests.fixtures.engines import start_engine
from tests.tuner.conftest import register
from tests.tuner.conftest import running_engine_config
from tests.tuner.conftest import start
from tuner import Tuner

pytestmark = [SQLITE_ONLY, pytest.mark.slow]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[RunningEngine]:
    running = start_engine(tmp_path)
    yield running
    running.stop()


def test_a_quality_spec_keeps_unfaithful_precisions_out(
    sessions: SessionFactory, settings: Settings, url: str, engine: RunningEngine
) -> None:
    headers = {"Authorization": f"Bearer {engine.admin_token}"}
    engine_id = register(sessions, engine.url, engine.admin_token, "p99_s<=5")
    target = EngineTarget("ref", "reference", engine.url, admin_token=engine.admin_token)
    adapter = adapter_for(target)
    try:
        answers = probe.record(adapter, probe.default_probe_set()[:8])
        with unit_of_work(sessions) as s:
            quality_store.save_reference(
                s, engine_id=engine_id, config=adapter.current_config(), top_k=5,
                answers=answers, actor="t",
            )  # fmt: skip
        precisions = [k for k in adapter.search_space() if k.name == "precision"][0].choices
        row = start(
            sessions, settings, adapter,
            objective="goodput", slo=["quality>=0.5"], load="concurrency=4,shapes=16x8",
            trials=3, knobs=["precision"], seed=1,
        )  # fmt: skip
    finally:
        adapter.close()
    unfaithful = [p for p in precisions if p != "fp32"]
    assert unfaithful, "this device offers fp32 only: nothing to tell apart"
    noise = {"weight_noise": 0.3, "weight_noise_precisions": unfaithful}
    assert httpx.put(f"{engine.url}/admin/faults", json=noise, headers=headers).status_code == 200

    result = Tuner(session_factory=sessions, storage_url=url, settings=settings).run(row.id)
    print(f"tuning with a quality spec: {result['trials']}")

    probed = [t for t in result["trials"] if t["params"]["precision"] != "fp32"]
    assert probed, result["trials"]
    with sessions() as s:
        for trial in probed:
            assert trial["outcome"] == "breach", trial
            verdict = rollouts.get_rollout(s, trial["rollout_id"]).evidence["verdict"]
            assert verdict["outcome"] == "quality" and verdict["quality"]["passed"] is False
    assert result["best"]["params"]["precision"] == "fp32"
    applied = result.get("applied")
    assert (
        applied is None
        or applied["state"] != "committed"
        or (running_engine_config(engine)["precision"] == "fp32")
    )
    assert running_engine_config(engine)["precision"] == "fp32"
    # The report shows each probed trial's measures and verdict.
    assert "failed quality&gt;=0.5" in Path(result["report"]).read_text()
