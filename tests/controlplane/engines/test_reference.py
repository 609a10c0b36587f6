from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator

import httpx
import pytest

from collectors import parse
from controlplane.domain import EngineRejectedError
from controlplane.domain import EngineTarget
from controlplane.domain import EngineUnreachableError
from controlplane.domain import ValidationError
from controlplane.engines import adapter_for
from controlplane.engines.base import EngineAdapter
from controlplane.engines.reference import REFERENCE_METRICS
from controlplane.engines.reference import ReferenceAdapter
from tests.controlplane.engines.contract import EngineAdapterContract
from tests.fixtures.engines import RunningEngine
from tests.fixtures.engines import free_port


@pytest.fixture
def adapter(reference_engine: RunningEngine) -> Iterator[EngineAdapter]:
    target = EngineTarget(
        name="ref",
        kind="reference",
        url=reference_engine.url,
        admin_token=reference_engine.admin_token,
    )
    adapter = adapter_for(target)
    yield adapter
    adapter.close()


@pytest.fixture
def send_request(reference_engine: RunningEngine) -> Callable[[], None]:
    def send() -> None:
        response = httpx.post(
            f"{reference_engine.url}/v1/completions",
            json={"model": "tiny", "prompt": "hello", "max_tokens": 4},
            timeout=30,
        )
        assert response.status_code == 200, response.text

    return send


class TestReferenceAdapter(EngineAdapterContract):
    pass


def test_registry_builds_the_reference_adapter(adapter: EngineAdapter) -> None:
    assert isinstance(adapter, ReferenceAdapter)


def test_unknown_kind_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match="no adapter controls kind 'sglang'"):
        adapter_for(EngineTarget(name="t", kind="sglang", url="http://127.0.0.1:1"))


def test_unreachable_engine() -> None:
    target = EngineTarget(name="gone", kind="reference", url=f"http://127.0.0.1:{free_port()}")
    adapter = adapter_for(target)
    try:
        assert not adapter.health().ok
        with pytest.raises(EngineUnreachableError, match="gone"):
            adapter.current_config()
    finally:
        adapter.close()


def test_wrong_admin_token_is_not_mistaken_for_success(reference_engine: RunningEngine) -> None:
    target = EngineTarget(
        name="ref", kind="reference", url=reference_engine.url, admin_token="wrong"
    )
    adapter = adapter_for(target)
    try:
        with pytest.raises((EngineUnreachableError, EngineRejectedError)):
            adapter.current_config()
    finally:
        adapter.close()


def test_failed_requests_are_counted_once_and_client_mistakes_not_at_all() -> None:
    text = (
        "# TYPE vllm:request_success_total counter\n"
        'vllm:request_success_total{finished_reason="length",model_name="m"} 90\n'
        'vllm:request_success_total{finished_reason="error",model_name="m"} 2\n'
        'vllm:request_success_total{finished_reason="abort",model_name="m"} 1\n'
        "# TYPE engine_request_failures_total counter\n"
        'engine_request_failures_total{model_name="m",reason="error"} 2\n'
        'engine_request_failures_total{model_name="m",reason="rejected"} 3\n'
        'engine_request_failures_total{model_name="m",reason="invalid"} 5\n'
    )
    samples = parse(text, source="ref", metric_map=REFERENCE_METRICS, ts=0.0)
    failed = sum(s.value for s in samples if s.metric == "requests_failed_total")
    succeeded = sum(s.value for s in samples if s.metric == "requests_succeeded_total")
    assert (failed, succeeded) == (2 + 1 + 3, 90)


def test_check_inference_of_an_unreachable_engine_is_an_error() -> None:
    target = EngineTarget(name="gone", kind="reference", url=f"http://127.0.0.1:{free_port()}")
    adapter = adapter_for(target)
    try:
        health = adapter.check_inference(timeout_s=2.0)
        assert not health.ok and health.detail.startswith("error: "), health.detail
    finally:
        adapter.close()


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"choices": []}, "no choices"),
        ({"choices": [{"finish_reason": "length"}]}, "no text"),
        ({"choices": [{"text": "x", "finish_reason": None}]}, "finish_reason None"),
        ({"choices": [{"text": "x", "finish_reason": "length"}]}, "completion_tokens None"),
        (
            {
                "choices": [{"text": "x", "finish_reason": "length"}],
                "usage": {"completion_tokens": 0},
            },
            "completion_tokens 0",
        ),
    ],
)
def test_check_inference_refuses_a_wrong_shaped_answer(
    body: dict[str, object], problem: str
) -> None:
    def serve(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "m"}]})
        return httpx.Response(200, json=body)

    target = EngineTarget(name="odd", kind="reference", url="http://odd.invalid")
    client = httpx.Client(base_url=target.url, transport=httpx.MockTransport(serve))
    adapter = ReferenceAdapter(target, client=client)
    try:
        health = adapter.check_inference(timeout_s=2.0)
        assert not health.ok
        assert health.detail.startswith("wrong shape: ") and problem in health.detail
    finally:
        adapter.close()
