"""A live-mode tuning run: the engine's real metrics are the only source, the traffic is not
the tuner's (a thread of the project's load generator plays the users), and every trial is
judged at the load the baseline was measured at. When the traffic doubles in the middle of
a trial, that trial fails instead of being credited with the peak, and the study goes on."""

from __future__ import annotations

import threading

import optuna
import pytest

from controlplane.settings import Settings
from controlplane.store.database import SessionFactory
from tests.fixtures.db import SQLITE_ONLY
from tests.fixtures.engines import RunningEngine
from tests.tuner.conftest import start_on
from tuner import Tuner
from tuner import TuningEvent
from tuner.loadgen import LoadSpec
from tuner.loadgen import RequestShape
from tuner.loadgen import run_load_sync

pytestmark = SQLITE_ONLY

BASE_RPS = 20.0
PEAK_RPS = 45.0


class Users:
    """Open-loop traffic at a rate the test changes while the run goes on."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.rate = BASE_RPS
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._done.is_set():
            spec = LoadSpec(self.url, "tiny", mode="constant", rate=self.rate, duration_s=0.5,
                            shapes=(RequestShape(prompt_len=8, max_tokens=4),),
                            extra_body={"ignore_eos": True})  # fmt: skip
            run_load_sync(spec)

    def __enter__(self) -> Users:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=30)


def test_live_trials_are_judged_at_the_baseline_load(
    sessions: SessionFactory, settings: Settings, url: str, poor_engine: RunningEngine
) -> None:
    row = start_on(
        sessions, settings, poor_engine, objective="goodput", slo=["p99_ms<=2000"],
        load="live", trials=4, knobs=["max_batch_size"], seed=1,
    )  # fmt: skip

    with Users(poor_engine.url) as users:

        def traffic(event: TuningEvent) -> None:
            # Trial 2 (the third) is measured while the traffic is at its peak.
            if event.kind == "trial" and event.trial is not None:
                users.rate = PEAK_RPS if event.trial.number == 1 else BASE_RPS

        result = Tuner(
            session_factory=sessions, storage_url=url, settings=settings, on_event=traffic
        ).run(row.id)

    outcomes = [t["outcome"] for t in result["trials"]]
    assert outcomes[2] == "failed", result["trials"]
    assert "not within 25% of the baseline's" in result["trials"][2]["error"]
    assert [o for i, o in enumerate(outcomes) if i != 2] == ["feasible"] * 3, outcomes
    study = optuna.load_study(study_name=row.study_name, storage=url)
    reference = study.user_attrs["live_reference_rps"]
    assert BASE_RPS * 0.6 < reference < BASE_RPS * 1.25, reference
    for t in study.trials:
        if t.state is optuna.trial.TrialState.COMPLETE and t.user_attrs["kind"] != "baseline":
            m = t.user_attrs["measurement"]
            assert abs(m["load_rps"] / reference - 1) <= 0.25, m
            # Scaled to the baseline's load: no failures, so throughput is the reference.
            assert m["throughput"] == pytest.approx(reference, rel=0.01), m
