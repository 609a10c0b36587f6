"""Hostile requests to a real engine server (model ``tiny``, context 256): oversized bodies,
prompts far past the context, lone surrogates, deep nesting, and an unexpected exception.
Each is a clear OpenAI-style error, counted in the failure metrics under the right reason."""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

import engine.app as engine_app
from engine.app import create_app
from engine.config import EngineConfig
from engine.model import MODEL_SPECS
from engine.service import Engine
from tests.engine.serving import RunningServer
from tests.engine.serving import serve_engine
from tests.fixtures.asgi import serve_asgi


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with serve_engine(EngineConfig(max_batch_size=4)) as running:
        yield running


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=60) as c:
        yield c


def _failures(server: RunningServer, reason: str) -> float:
    value = server.engine.metrics.registry.get_sample_value(
        "engine_request_failures_total", {"model_name": "tiny", "reason": reason}
    )
    return float(value or 0.0)


def _raw_json(payload: str) -> dict[str, Any]:
    return {"content": payload, "headers": {"Content-Type": "application/json"}}


def test_a_body_over_the_limit_is_413_before_it_is_parsed(
    client: httpx.Client, server: RunningServer
) -> None:
    before = _failures(server, "invalid")
    body = {"model": "tiny", "prompt": "x" * (5 * 1024 * 1024), "max_tokens": 1}
    declared = client.post("/v1/completions", json=body)
    assert declared.status_code == 413
    assert declared.json()["error"]["code"] == "body_too_large"
    assert "1048576 bytes" in declared.json()["error"]["message"]

    def chunks() -> Iterator[bytes]:
        yield b'{"model": "tiny", "prompt": "'
        for _ in range(2048):
            yield b"y" * 1024
        yield b'"}'

    streamed = client.post(
        "/v1/chat/completions", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert streamed.json()["error"]["code"] == "body_too_large"
    assert _failures(server, "invalid") == before + 2
    assert client.get("/healthz").status_code == 200


def test_a_prompt_past_the_context_is_refused_without_tokenizing_it(
    client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[bool] = []
    real = engine_app.encode

    def spy(text: str, **kwargs: Any) -> list[int]:
        try:
            asyncio.get_running_loop()
            calls.append(True)
        except RuntimeError:
            calls.append(False)
        return real(text, **kwargs)

    monkeypatch.setattr(engine_app, "encode", spy)
    response = client.post(
        "/v1/completions", json={"model": "tiny", "prompt": "z" * 500_000, "max_tokens": 1}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "context_length_exceeded" and error["param"] == "prompt"
    assert calls == []  # refused on its length alone

    ok = client.post(
        "/v1/completions",
        json={"model": "tiny", "prompt": "hi", "max_tokens": 2, "ignore_eos": True},
    )
    assert ok.status_code == 200
    assert calls == [False]  # tokenized, and not on the event loop's thread


@pytest.mark.parametrize(
    ("path", "payload", "param"),
    [
        ("/v1/completions", '{"model": "tiny", "prompt": "a\\ud800b", "max_tokens": 2}', "prompt"),
        (
            "/v1/chat/completions",
            '{"model": "tiny", "messages": [{"role": "user", "content": "\\udfff"}]}',
            "messages.0.content",
        ),
        ("/v1/completions", '{"model": "\\ud800", "prompt": "a"}', "model"),
    ],
)
def test_a_lone_surrogate_is_an_invalid_request_naming_the_field(
    client: httpx.Client, server: RunningServer, path: str, payload: str, param: str
) -> None:
    invalid, errors = _failures(server, "invalid"), _failures(server, "error")
    response = client.post(path, **_raw_json(payload))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert _failures(server, "invalid") == invalid + 1
    assert _failures(server, "error") == errors


def test_deeply_nested_bodies_are_refused_cleanly(
    client: httpx.Client, server: RunningServer
) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    config = client.put("/admin/config", content=deep.encode(), headers=server.admin_headers)
    assert config.status_code == 422
    assert config.json()["error"]["message"] == "the body is nested too deeply"
    nested_value = client.put(
        "/admin/config",
        content=('{"max_batch_size": ' + deep + "}").encode(),
        headers=server.admin_headers,
    )
    assert nested_value.status_code == 422
    completion = client.post("/v1/completions", **_raw_json('{"prompt": ' + deep + "}"))
    assert completion.status_code == 400
    assert set(completion.json()["error"]) == {"message", "type", "param", "code"}
    assert client.get("/admin/config", headers=server.admin_headers).json() == (
        server.engine.config.as_dict()
    )


def test_an_unexpected_error_is_a_counted_json_500_that_keeps_the_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = Engine(MODEL_SPECS["tiny"], EngineConfig())
    app = create_app(engine)

    async def explode() -> None:
        raise RuntimeError("the tensor is on fire")

    # A route that fails the way a bug would; everything around it is the real app.
    app.add_api_route("/v1/explode", explode, methods=["POST"])
    with serve_asgi(app) as base_url, caplog.at_level(logging.ERROR):
        parts = urlsplit(base_url)
        assert parts.hostname is not None
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        try:
            conn.request("POST", "/v1/explode", body=b"{}")
            failed = conn.getresponse()
            assert failed.status == 500
            assert json.loads(failed.read())["error"]["type"] == "internal_error"
            conn.request("GET", "/healthz")
            assert conn.getresponse().status == 200
        finally:
            conn.close()
    errors = engine.metrics.registry.get_sample_value(
        "engine_request_failures_total", {"model_name": "tiny", "reason": "error"}
    )
    assert errors == 1.0
    records = [r for r in caplog.records if "unhandled error" in r.getMessage()]
    assert len(records) == 1 and records[0].exc_info is not None
    assert "the tensor is on fire" in caplog.text
