from __future__ import annotations

import math

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from controlplane.domain import Role
from controlplane.domain import Sample
from controlplane.store import samples as store
from controlplane.store.database import make_session_factory
from controlplane.store.database import unit_of_work
from tests.fixtures.api import TokenMaker


def _put(db_engine: Engine, samples: list[Sample]) -> None:
    with unit_of_work(make_session_factory(db_engine)) as s:
        store.insert_samples(s, samples)


def _histogram(ts: float, counts: dict[str, float], model: str = "m") -> list[Sample]:
    return [
        Sample(ts, "e", "request_latency_seconds_bucket", (("le", le), ("model_name", model)), c)
        for le, c in counts.items()
    ]


def test_quantile_from_buckets_and_rate_across_restart(
    client: TestClient, auth: TokenMaker, db_engine: Engine
) -> None:
    samples = _histogram(1000.0, {"0.1": 0, "0.5": 0, "1.0": 0, "+Inf": 0})
    samples += _histogram(1010.0, {"0.1": 10, "0.5": 60, "1.0": 90, "+Inf": 100})
    for ts, v in [(1000.0, 50.0), (1005.0, 80.0), (1010.0, 10.0)]:  # a restart at 1010
        samples.append(Sample(ts, "e", "requests_succeeded_total", (), v))
    _put(db_engine, samples)
    viewer = auth(Role.viewer)
    params = {"engine": "e", "metric": "request_latency_seconds", "from": 1000, "to": 1010}
    r = client.get(
        "/api/v1/series", params={**params, "step": 10, "quantile": 0.5}, headers=viewer
    )
    assert r.status_code == 200, r.text
    (series,) = r.json()["series"]
    assert series["labels"] == {"quantile": "0.5"}
    assert series["points"] == [[1010.0, pytest.approx(0.42)]]
    r = client.get(
        "/api/v1/series",
        params={
            "engine": "e",
            "metric": "requests_succeeded_total",
            "from": 1000,
            "to": 1010,
            "step": 10,
            "rate": True,
        },
        headers=viewer,
    )
    ((ts, rate),) = r.json()["series"][0]["points"]
    assert ts == 1010.0 and rate == pytest.approx((30 + 10) / 10)


def test_label_filter_and_downsampling(
    client: TestClient, auth: TokenMaker, db_engine: Engine
) -> None:
    _put(
        db_engine,
        [
            Sample(1000.0 + i, "e", "requests_running", (("model_name", m),), float(i))
            for i in range(20)
            for m in ("a", "b")
        ],
    )
    r = client.get(
        "/api/v1/series",
        params=[
            ("engine", "e"),
            ("metric", "requests_running"),
            ("labels", "model_name=a"),
            ("from", "1000"),
            ("to", "1020"),
            ("step", "10"),
            ("agg", "max"),
        ],
        headers=auth(Role.viewer),
    )
    assert r.status_code == 200
    (series,) = r.json()["series"]
    assert series["labels"] == {"model_name": "a"}
    assert series["points"] == [[1000.0, 0.0], [1010.0, 10.0], [1020.0, 19.0]]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": 10, "to": 5}, "from"),
        ({"from": 0, "to": 1e6, "step": 1}, "step"),
        ({"labels": "nolabel"}, "labels"),
        ({"quantile": 0.5, "rate": True}, "rate"),
    ],
)
def test_bad_queries_are_422(
    client: TestClient, auth: TokenMaker, params: dict[str, object], field: str
) -> None:
    r = client.get(
        "/api/v1/series",
        params={"engine": "e", "metric": "m", **params},
        headers=auth(Role.viewer),
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][-1] == field


def test_series_needs_a_token(client: TestClient) -> None:
    assert client.get("/api/v1/series", params={"engine": "e", "metric": "m"}).status_code == 401
    assert not math.isnan(0.0)
