"""Done-when: a real reference engine, the collectors in the API process, a real store
(SQLite and PostgreSQL): request rate and latency quantiles from ``/api/v1/series`` agree
with what the load generator measured, within 10 %.

The p99 is held to the client's from one side only. The client's latency includes its own
stalls (event loop, a core shared with the engine), which the engine never sees, and p99
over ~170 requests is the second or third slowest: in one CI run on a contended host the
client saw 248 ms where the engine's histogram said 180 ms, while the bulk agreed. So the
bulk (p50, p90) must agree both ways, and the engine's p99 must lie between the client's
p90 and its p99 (each with the 10 % the buckets resolve)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from controlplane.api.app import create_app
from controlplane.domain import Role
from controlplane.schemas.engines import EngineCreate
from controlplane.settings import CollectorSettings
from controlplane.settings import Settings
from controlplane.store import engines
from controlplane.store.database import make_session_factory
from controlplane.store.database import unit_of_work
from tests.collectors.helpers import wait_for
from tests.fixtures.api import TokenMaker
from tests.fixtures.engines import RunningEngine
from tuner.loadgen import LoadSpec
from tuner.loadgen import RequestShape
from tuner.loadgen import percentile
from tuner.loadgen import run_load_sync

pytestmark = pytest.mark.slow


def test_rate_and_p99_agree_with_the_load_client(
    reference_engine: RunningEngine, db_engine: Engine, auth: TokenMaker, tmp_path: Path
) -> None:
    settings = Settings(
        database_url=db_engine.url.render_as_string(hide_password=False),
        data_dir=tmp_path,
        collectors=CollectorSettings(
            enabled=True,
            scrape_interval_s=0.25,
            flush_interval_s=0.2,
            targets_refresh_s=0.2,
            gpu=False,
        ),
    )
    with unit_of_work(make_session_factory(db_engine)) as s:
        engines.add_engine(
            s,
            data=EngineCreate.model_validate({"name": "ref", "url": reference_engine.url}),
            actor="t",
        )
    app = create_app(settings, db_engine=db_engine)
    viewer = auth(Role.viewer)
    with TestClient(app) as client:
        runtime = app.state.collectors
        wait_for(
            lambda: (
                "ref" in runtime.scraper.engines() and runtime.scraper.status("ref").scrapes >= 2
            ),
            what="engine scraped",
        )
        t0 = time.time()
        result = run_load_sync(
            LoadSpec(
                base_url=reference_engine.url,
                model="tiny",
                mode="constant",
                rate=6.0,
                duration_s=28.0,
                # Generations long enough that the client's own transport and event-loop
                # delay (a few ms, part of its latency but not the engine's) is small
                # beside the engine's time, as it is for real LLM requests.
                shapes=(RequestShape(prompt_len=16, max_tokens=96),),
                extra_body={"ignore_eos": True},
                timeout_s=30.0,
            )
        )
        # Wait for a scrape after the last response, and for it to reach the store.
        done = time.time()
        wait_for(lambda: (runtime.scraper.status("ref").last_success or 0) > done + 0.3)
        assert runtime.sink.flush(10)
        t1 = time.time()
        assert result.ok >= 150 and result.failed == 0
        window = t1 - t0
        common = {"engine": "ref", "from": t0, "to": t1, "step": window, "window": window}
        r = client.get(
            "/api/v1/series",
            headers=viewer,
            params={**common, "metric": "requests_succeeded_total", "rate": True},
        )
        assert r.status_code == 200, r.text
        increase = sum(p[1] for s in r.json()["series"] for p in s["points"]) * window
        r = client.get(
            "/api/v1/series",
            headers=viewer,
            params={**common, "metric": "request_latency_seconds", "quantile": 0.99},
        )
        ((_, p99),) = r.json()["series"][0]["points"]
        bulk: dict[float, float] = {}
        for q in (0.5, 0.9):
            r = client.get(
                "/api/v1/series",
                headers=viewer,
                params={**common, "metric": "request_latency_seconds", "quantile": q},
            )
            ((_, bulk[q]),) = r.json()["series"][0]["points"]
    # The counter's increase over the window is the number of requests served; as a rate
    # over the load's wall time it is what the client measured.
    assert increase / result.wall_s == pytest.approx(result.achieved_rps, rel=0.10)
    # The engine's latency buckets are 10 % apart, so histogram_quantile resolves a quantile
    # to about 10 %.
    seen: dict[float, float] = {}
    for q in (0.5, 0.9, 0.99):
        value = percentile(result.latencies, q * 100)
        assert value is not None
        seen[q] = value
    for q in (0.5, 0.9):
        assert bulk[q] == pytest.approx(seen[q], rel=0.10), (q, bulk, seen)
    assert seen[0.9] * 0.9 <= p99 <= seen[0.99] * 1.1, (p99, seen, result.summary())
