"""The leak fault switch: admin only, validated whole, keeps the bytes it says per accepted
request (resident: the process's RSS grows), and frees them when cleared."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.engine.serving import RunningServer
from tests.engine.serving import serve_engine

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with serve_engine() as running:
        yield running


@pytest.fixture
def admin(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=60, headers=server.admin_headers) as c:
        yield c
        c.delete("/admin/faults")


def _complete(client: httpx.Client, n: int) -> None:
    for _ in range(n):
        body = {"model": "tiny", "prompt": "leak", "max_tokens": 1}
        assert client.post("/v1/completions", json=body).status_code == 200


def test_faults_need_the_admin_token(server: RunningServer) -> None:
    response = httpx.put(f"{server.base_url}/admin/faults", json={"leak_bytes_per_request": 1})
    assert response.status_code == 401
    assert httpx.get(f"{server.base_url}/admin/faults").status_code == 401


def test_a_leak_keeps_bytes_per_request_until_cleared(admin: httpx.Client) -> None:
    assert admin.get("/admin/faults").json()["leak_bytes_per_request"] == 0
    _complete(admin, 3)
    assert admin.get("/admin/faults").json()["leaked_bytes"] == 0
    set_ = admin.put("/admin/faults", json={"leak_bytes_per_request": 4 * MIB})
    assert set_.status_code == 200 and set_.json()["leak_bytes_per_request"] == 4 * MIB
    _complete(admin, 10)
    state = admin.get("/admin/faults").json()
    assert (state["leaked_requests"], state["leaked_bytes"]) == (10, 40 * MIB)
    # That the bytes are resident is checked on a real engine process by the leak detector's
    # live test: inside this long-lived test process the allocator reuses freed pages, so
    # its RSS need not grow.
    cleared = admin.delete("/admin/faults").json()
    assert (cleared["leak_bytes_per_request"], cleared["leaked_bytes"]) == (0, 0)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"leak_bytes_per_request": -1}, "leak_bytes_per_request"),
        ({"leak_bytes_per_request": 1 << 40}, "leak_bytes_per_request"),
        ({"leak_bytes_per_request": "1k"}, "leak_bytes_per_request"),
        ({"leak_bytes_per_request": True}, "leak_bytes_per_request"),
        ({"slow_ms": 5}, "slow_ms"),
        ([1], "body"),
    ],
)
def test_bad_faults_are_422_and_change_nothing(
    admin: httpx.Client, body: object, param: str
) -> None:
    admin.put("/admin/faults", json={"leak_bytes_per_request": 7})
    response = admin.put("/admin/faults", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["param"] == param
    assert admin.get("/admin/faults").json()["leak_bytes_per_request"] == 7
