"""Admin API: auth, config read/merge/validation, search space, live switch under load."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from engine.config import EngineConfig
from tests.engine.serving import RunningServer
from tests.engine.serving import serve_engine


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with serve_engine(EngineConfig(max_batch_size=4)) as running:
        yield running


@pytest.fixture
def admin(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=60, headers=server.admin_headers) as c:
        yield c


def test_admin_is_disabled_without_a_token() -> None:
    with serve_engine(admin_token=None) as running:
        response = httpx.get(f"{running.base_url}/admin/config")
        assert response.status_code == 403
        assert "--admin-token" in response.json()["error"]["message"]


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic dGVzdA=="])
def test_admin_needs_the_right_bearer_token(server: RunningServer, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = httpx.put(
        f"{server.base_url}/admin/config", json={"max_batch_size": 2}, headers=headers
    )
    assert response.status_code == 401
    assert server.engine.config.max_batch_size != 2


def test_search_space_describes_this_device(admin: httpx.Client) -> None:
    knobs = {k["name"]: k for k in admin.get("/admin/search-space").json()["knobs"]}
    assert set(knobs) == {"max_batch_size", "streams", "precision", "max_queue_delay_ms"}
    assert "fp32" in knobs["precision"]["choices"]
    assert knobs["streams"]["min"] == 1


def test_partial_put_merges_and_returns_the_serving_config(admin: httpx.Client) -> None:
    before = admin.get("/admin/config").json()
    response = admin.put("/admin/config", json={"max_queue_delay_ms": 2})
    assert response.status_code == 200
    assert response.json() == {**before, "max_queue_delay_ms": 2.0}
    assert admin.get("/admin/config").json() == response.json()
    completion = admin.post(
        "/v1/completions", json={"model": "tiny", "prompt": "after", "max_tokens": 3}
    )
    assert completion.status_code == 200


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"max_batch_size": 0}, "max_batch_size"),
        ({"streams": 1000}, "streams"),
        ({"precision": "fp4"}, "precision"),
        ({"bogus_knob": 1}, "bogus_knob"),
        ({"max_batch_size": "4"}, "max_batch_size"),
    ],
)
def test_invalid_config_is_a_422_and_changes_nothing(
    admin: httpx.Client, body: dict[str, Any], param: str
) -> None:
    before = admin.get("/admin/config").json()
    response = admin.put("/admin/config", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["param"] == param
    assert admin.get("/admin/config").json() == before


def test_malformed_config_body_is_a_422(admin: httpx.Client) -> None:
    before = admin.get("/admin/config").json()
    response = admin.put("/admin/config", content=b"{not json")
    assert response.status_code == 422
    assert admin.put("/admin/config", json=[1, 2]).status_code == 422
    assert admin.get("/admin/config").json() == before


def test_live_switches_under_load_fail_no_request(server: RunningServer) -> None:
    configs: list[dict[str, Any]] = [
        {"max_batch_size": 2, "streams": 2, "precision": "bf16"},
        {"max_batch_size": 8, "streams": 1, "precision": "int8"},
        {"max_batch_size": 1, "streams": 2, "precision": "fp32", "max_queue_delay_ms": 1},
        {"max_batch_size": 16, "streams": 1, "precision": "fp32", "max_queue_delay_ms": 0},
    ]

    async def scenario() -> tuple[list[int], list[int], int]:
        stop = asyncio.Event()
        statuses: list[int] = []

        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as c:

            async def user(i: int) -> None:
                while not stop.is_set():
                    r = await c.post(
                        "/v1/completions",
                        json={
                            "model": "tiny",
                            "prompt": f"user {i}",
                            "max_tokens": 20,
                            "ignore_eos": True,
                            "stream": i % 2 == 0,
                        },
                    )
                    statuses.append(r.status_code)

            users = [asyncio.create_task(user(i)) for i in range(6)]
            while len(statuses) < 6:
                await asyncio.sleep(0.01)
            put_statuses = []
            for config in configs:
                r = await c.put("/admin/config", json=config, headers=server.admin_headers)
                put_statuses.append(r.status_code)
                seen = len(statuses)
                while len(statuses) < seen + 3:  # requests complete on the new config
                    await asyncio.sleep(0.01)
            stop.set()
            await asyncio.gather(*users)
        return statuses, put_statuses, len(statuses)

    statuses, put_statuses, total = asyncio.run(scenario())
    assert put_statuses == [200] * len(configs)
    assert total > 20
    assert set(statuses) == {200}
    assert server.engine.config.as_dict() == {**configs[-1], "max_queue_delay_ms": 0.0}
    registry = server.engine.metrics.registry
    errors = registry.get_sample_value(
        "vllm:request_success_total", {"model_name": "tiny", "finished_reason": "error"}
    )
    assert errors == 0.0


def test_failed_build_is_a_500_and_the_old_config_keeps_serving(
    server: RunningServer, admin: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(precision: str) -> None:
        raise RuntimeError("simulated build failure")

    monkeypatch.setattr(server.engine, "model_for", broken)
    before = admin.get("/admin/config").json()
    target = "int8" if before["precision"] != "int8" else "fp32"
    response = admin.put("/admin/config", json={"precision": target})
    assert response.status_code == 500
    assert "simulated build failure" in response.json()["error"]["message"]
    assert admin.get("/admin/config").json() == before
    completion = admin.post(
        "/v1/completions", json={"model": "tiny", "prompt": "still here", "max_tokens": 3}
    )
    assert completion.status_code == 200
