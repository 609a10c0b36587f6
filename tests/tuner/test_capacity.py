"""The capacity objective: a trial's score is the highest request rate its config sustains
within the SLO, found by a short rate search; on a real engine with a poor default (batch
1) the tuned capacity is clearly higher, applied through the guard and reported as the
headline ratio. A capacity run without a latency SLO, or on live traffic, is refused."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from controlplane.domain import Role
from controlplane.schemas.tuning import TuningCreate
from controlplane.settings import Settings
from controlplane.settings import TunerSettings
from controlplane.store import rollouts
from controlplane.store.database import SessionFactory
from tests.fixtures.api import TokenMaker
from tests.fixtures.db import SQLITE_ONLY
from tests.fixtures.engines import RunningEngine
from tests.tuner.conftest import running_engine_config
from tests.tuner.conftest import start_on
from tuner import Tuner

# Short probes: the search, not each probe's precision, is what this test is about.
QUICK_PROBES = TunerSettings(
    warmup_s=0.2,
    window_s=0.8,
    min_windows=2,
    max_windows=2,
    tolerance=0.15,
    repeats=1,
    lease_s=0.3,
    stale_after_s=2.0,
    capacity_step=2.0,
    capacity_precision=0.3,
    capacity_max_probes=3,
)


@pytest.mark.parametrize(
    ("request_body", "field"),
    [
        ({"objective": "capacity"}, "slo"),
        ({"objective": "capacity", "slo": ["error_rate<=1%"]}, "slo"),
        ({"objective": "capacity", "slo": ["p99_ms<=300"], "load": "live"}, "load"),
    ],
)
def test_capacity_needs_a_latency_slo_and_synthetic_load(
    request_body: dict[str, object], field: str
) -> None:
    with pytest.raises(ValueError, match=f"{field}: the capacity objective"):
        TuningCreate.model_validate(request_body)


def test_the_api_refuses_capacity_without_an_slo(client: TestClient, auth: TokenMaker) -> None:
    op = auth(Role.operator)
    body = {"name": "ref", "url": "http://127.0.0.1:9"}
    assert client.post("/api/v1/engines", json=body, headers=op).status_code == 201
    refused = client.post(
        "/api/v1/engines/ref/tuning-runs", json={"objective": "capacity"}, headers=op
    )
    assert refused.status_code == 422 and "slo: the capacity objective" in refused.text


@SQLITE_ONLY
@pytest.mark.slow
def test_capacity_tuning_finds_a_clearly_higher_capacity_than_a_poor_default(
    sessions: SessionFactory, settings: Settings, url: str, serial_engine: RunningEngine
) -> None:
    # The guard bakes each switch under the --load rate; on a slow (or busy) machine batch 1
    # finishes few requests in a short bake, so the verdict may take a little longer.
    guard = settings.guard.model_copy(update={"min_requests": 8, "no_data_timeout_s": 4.0})
    settings = settings.model_copy(update={"tuner": QUICK_PROBES, "guard": guard})
    row = start_on(
        sessions, settings, serial_engine,
        objective="capacity", slo=["p99_ms<=500"], load="rate=10,shapes=16x32",
        trials=2, knobs=["max_batch_size"], seed=2,
    )  # fmt: skip
    result = Tuner(session_factory=sessions, storage_url=url, settings=settings).run(row.id)
    print(result.get("headline"))
    best = result["best"]["params"]
    trials = [(t["outcome"], t["values"], t["error"]) for t in result["trials"]]
    assert best["max_batch_size"] > 1, trials
    assert "remeasured" in result, result.get("note")
    remeasured = result["remeasured"]
    assert remeasured["best"]["mean"] > 1.3 * remeasured["default"]["mean"], remeasured
    assert "req/s tuned vs" in result["headline"]
    baseline = result["trials"][0]
    assert baseline["kind"] == "baseline" and baseline["values"][0] > 0
    applied = result["applied"]
    assert applied["state"] == "committed"
    assert running_engine_config(serial_engine)["max_batch_size"] == best["max_batch_size"]
    with sessions() as s:
        final = rollouts.get_rollout(s, applied["rollout_id"])
        assert final.reason == "tuner" and final.evidence["verdict"]["outcome"] == "pass"
