"""The triton adapter on a real Triton Inference Server (CPU, python backend around a small
PyTorch model), driven through its repository API in explicit model-control mode."""

from __future__ import annotations

import threading
from collections.abc import Callable
from collections.abc import Iterator

import httpx
import pytest

from controlplane.domain import EngineRejectedError
from controlplane.domain import EngineTarget
from controlplane.domain import EngineUnreachableError
from controlplane.domain import ValidationError
from controlplane.engines import adapter_for
from controlplane.engines.base import EngineAdapter
from controlplane.engines.triton import TritonAdapter
from tests.controlplane.engines.contract import EngineAdapterContract
from tests.fixtures.triton_server import RunningTriton

pytestmark = pytest.mark.slow

INFER = {"inputs": [{"name": "INPUT0", "shape": [1, 16], "datatype": "FP32", "data": [0.5] * 16}]}


def _target(server: RunningTriton, model: str = "tiny") -> EngineTarget:
    return EngineTarget(
        name="tri",
        kind="triton",
        url=f"{server.url}/v2/models/{model}",
        metrics_url=server.metrics_url,
    )


@pytest.fixture
def adapter(triton_server: RunningTriton) -> Iterator[EngineAdapter]:
    adapter = adapter_for(_target(triton_server))
    yield adapter
    adapter.close()


@pytest.fixture
def send_request(triton_server: RunningTriton) -> Callable[[], None]:
    def send() -> None:
        response = httpx.post(f"{triton_server.url}/v2/models/tiny/infer", json=INFER, timeout=30)
        assert response.status_code == 200, response.text
        assert response.json()["outputs"][0]["shape"] == [1, 4]

    return send


class TestTritonAdapter(EngineAdapterContract):
    pass


def test_registry_builds_the_triton_adapter(adapter: EngineAdapter) -> None:
    assert isinstance(adapter, TritonAdapter)


def test_knobs_come_from_the_model_configuration(adapter: EngineAdapter) -> None:
    config = adapter.current_config()
    # tests/fixtures/triton/models/tiny/config.pbtxt
    assert config == {
        "max_batch_size": 8,
        "streams": 1,
        "precision": "fp32",
        "max_queue_delay_us": 0,
        "preferred_batch_size": 0,
    }
    assert adapter.search_space().knob("precision").values() == ("fp32", "bf16", "int8")


def test_an_override_triton_refuses_leaves_the_old_version_serving(
    adapter: EngineAdapter, send_request: Callable[[], None]
) -> None:
    before = adapter.current_config()
    # Legal for the knob, refused by Triton: a preferred batch above max_batch_size.
    with pytest.raises(EngineRejectedError, match="triton refused") as info:
        adapter.apply({"preferred_batch_size": 16})
    assert "failed to load 'tiny'" in str(info.value)  # Triton's own answer
    assert adapter.current_config() == before
    send_request()


def test_a_model_that_fails_to_load_leaves_the_old_version_serving(
    adapter: EngineAdapter, send_request: Callable[[], None]
) -> None:
    before = adapter.current_config()
    # The config offers int8, the model's initialize() has no int8 weights: the load fails
    # inside Triton, which keeps version 1 serving.
    with pytest.raises(EngineRejectedError, match="no such weights") as info:
        adapter.apply({"precision": "int8"})
    assert info.value.field == "precision"
    assert adapter.current_config() == before
    assert adapter.health().ok
    send_request()


def test_apply_under_traffic_fails_no_request(
    adapter: EngineAdapter, triton_server: RunningTriton
) -> None:
    stop = threading.Event()
    codes: list[int] = []

    def traffic() -> None:
        with httpx.Client(base_url=triton_server.url, timeout=30) as client:
            while not stop.is_set():
                codes.append(client.post("/v2/models/tiny/infer", json=INFER).status_code)

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        # Each apply is a reload (precision is a load-time choice of the model).
        assert adapter.apply({"precision": "bf16"})["precision"] == "bf16"
        assert adapter.apply({"precision": "fp32"})["precision"] == "fp32"
    finally:
        stop.set()
        worker.join()
    assert len(codes) > 4 and set(codes) == {200}


def test_a_model_that_does_not_exist_is_a_clear_error(triton_server: RunningTriton) -> None:
    adapter = adapter_for(_target(triton_server, model="nope"))
    try:
        with pytest.raises(EngineUnreachableError, match="no config for model 'nope'"):
            adapter.current_config()
        health = adapter.health()
        assert not health.ok and "nope" in health.detail
    finally:
        adapter.close()


def test_a_url_without_a_model_is_refused() -> None:
    with pytest.raises(ValidationError, match="names its model") as info:
        adapter_for(EngineTarget(name="t", kind="triton", url="http://127.0.0.1:8000"))
    assert info.value.field == "url"


def test_an_unreachable_server_is_unhealthy_and_unreachable() -> None:
    from tests.fixtures.engines import free_port

    target = EngineTarget(
        name="gone", kind="triton", url=f"http://127.0.0.1:{free_port()}/v2/models/tiny"
    )
    adapter = adapter_for(target)
    try:
        assert not adapter.health().ok
        with pytest.raises(EngineUnreachableError, match="gone"):
            adapter.current_config()
        assert adapter.check_inference(timeout_s=2.0).detail.startswith("error")
    finally:
        adapter.close()
