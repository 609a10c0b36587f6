"""The HTTP API against a real server on 127.0.0.1 (model ``tiny``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from engine.config import EngineConfig
from tests.engine.serving import RunningServer
from tests.engine.serving import serve_engine
from tests.engine.serving import wait_until


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with serve_engine(EngineConfig(max_batch_size=8)) as running:
        yield running


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30) as c:
        yield c


@pytest.fixture
def oai(server: RunningServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused") as c:
        yield c


def _completion(**overrides: Any) -> dict[str, Any]:
    return {"model": "tiny", "prompt": "Hello", "max_tokens": 5, **overrides}


def test_openai_client_completion(oai: openai.OpenAI) -> None:
    result = oai.completions.create(
        model="tiny", prompt="Hello", max_tokens=7, extra_body={"ignore_eos": True}
    )
    assert result.choices[0].finish_reason == "length"
    assert result.usage is not None
    assert result.usage.completion_tokens == 7
    assert result.usage.prompt_tokens == len("Hello") + 1


def test_openai_client_chat(oai: openai.OpenAI) -> None:
    result = oai.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=4,
        extra_body={"ignore_eos": True},
    )
    assert result.choices[0].message.role == "assistant"
    assert result.choices[0].finish_reason == "length"
    assert result.usage is not None and result.usage.completion_tokens == 4


def test_openai_client_streaming_matches_non_streaming(oai: openai.OpenAI) -> None:
    full = oai.completions.create(
        model="tiny", prompt="stream me", max_tokens=12, extra_body={"ignore_eos": True}
    )
    stream = oai.completions.create(
        model="tiny",
        prompt="stream me",
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"ignore_eos": True},
    )
    text = ""
    reasons = []
    usage = None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.text
            reasons.append(choice.finish_reason)
    assert text == full.choices[0].text
    assert reasons[-1] == "length"
    assert usage is not None and usage.completion_tokens == 12


def test_openai_client_chat_streaming(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=6,
        stream=True,
        extra_body={"ignore_eos": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "length"


def test_sse_wire_format_ends_with_done(client: httpx.Client) -> None:
    with client.stream("POST", "/v1/completions", json=_completion(stream=True)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    for line in lines[:-1]:
        assert json.loads(line.removeprefix("data: "))["object"] == "text_completion"


def test_max_tokens_is_honoured(client: httpx.Client) -> None:
    for n in (1, 3, 9):
        body = client.post("/v1/completions", json=_completion(max_tokens=n)).json()
        assert body["usage"]["completion_tokens"] <= n
        if body["choices"][0]["finish_reason"] == "length":
            assert body["usage"]["completion_tokens"] == n


def test_models_and_health(client: httpx.Client, server: RunningServer) -> None:
    models = client.get("/v1/models").json()
    assert [m["id"] for m in models["data"]] == ["tiny"]
    assert models["data"][0]["max_model_len"] == server.engine.spec.max_context
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.json()["config"] == server.engine.config.as_dict()


LONG_PROMPT = "x" * 300  # tiny's context is 256 tokens


@pytest.mark.parametrize(
    ("path", "payload", "param"),
    [
        ("/v1/completions", _completion(max_tokens=0), "max_tokens"),
        ("/v1/completions", _completion(max_tokens=-3), "max_tokens"),
        ("/v1/completions", _completion(max_tokens=10**9), "max_tokens"),
        ("/v1/completions", _completion(max_tokens="5"), "max_tokens"),
        ("/v1/completions", _completion(prompt=42), "prompt"),
        ("/v1/completions", _completion(stream="yes"), "stream"),
        ("/v1/completions", _completion(prompt=LONG_PROMPT), "prompt"),
        ("/v1/completions", _completion(model="gpt-17"), "model"),
        ("/v1/completions", {"prompt": "no model"}, "model"),
        ("/v1/chat/completions", {"model": "tiny", "messages": []}, "messages"),
        (
            "/v1/chat/completions",
            {"model": "tiny", "messages": [{"role": "robot", "content": "x"}]},
            "messages.0.role",
        ),
        (
            "/v1/chat/completions",
            {"model": "tiny", "messages": [{"role": "user", "content": LONG_PROMPT}]},
            "messages",
        ),
    ],
)
def test_bad_input_gets_an_openai_error_naming_the_field(
    client: httpx.Client, path: str, payload: dict[str, Any], param: str
) -> None:
    response = client.post(path, json=payload)
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param
    assert error["message"]


def test_malformed_json_is_a_400_with_an_openai_error(client: httpx.Client) -> None:
    response = client.post(
        "/v1/completions",
        content=b'{"model": "tiny", "prompt": ',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


def test_openai_client_sees_bad_request(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        oai.completions.create(model="tiny", prompt="x", max_tokens=10**6)
    assert "context length" in str(info.value)


def test_queue_full_is_a_429_with_retry_after() -> None:
    # An idle executor waits up to max_queue_delay_ms for a full batch, so two requests sit
    # in the queue (capacity 2) long enough for a third to be refused.
    config = EngineConfig(max_batch_size=8, max_queue_delay_ms=1000)
    with serve_engine(config, max_queue=2) as running:

        async def scenario() -> tuple[list[int], httpx.Response]:
            async with httpx.AsyncClient(base_url=running.base_url, timeout=30) as c:
                waiting = [
                    asyncio.create_task(c.post("/v1/completions", json=_completion()))
                    for _ in range(2)
                ]
                await asyncio.to_thread(wait_until, lambda: len(running.engine.queue) == 2)
                refused = await c.post("/v1/completions", json=_completion())
                done = await asyncio.gather(*waiting)
                return [r.status_code for r in done], refused

        statuses, refused = asyncio.run(scenario())
        assert statuses == [200, 200]
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.json()["error"]["code"] == "queue_full"
        registry = running.engine.metrics.registry
        rejected = registry.get_sample_value(
            "vllm:admission_rejections_total", {"model_name": "tiny", "reason": "queue_full"}
        )
        assert rejected == 1.0
