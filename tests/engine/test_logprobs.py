"""Log-probabilities on /v1/completions the way vLLM returns them, scoring by echo, token-id
prompts, and the weight-noise fault (admin only, reversible), on a real engine."""

from __future__ import annotations

import math
from collections.abc import Iterator

import httpx
import pytest

from tests.engine.serving import RunningServer
from tests.engine.serving import serve_engine

PROMPTS = ("The capital of France is", "def add(a, b):", "Once upon a time", "hello world")


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with serve_engine() as running:
        yield running


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=60, headers=server.admin_headers) as c:
        yield c
        c.delete("/admin/faults")


def _complete(client: httpx.Client, **body: object) -> dict[str, object]:
    response = client.post("/v1/completions", json={"model": "tiny", "max_tokens": 8, **body})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _ids(names: list[str]) -> list[int]:
    return [int(n.removeprefix("token_id:")) for n in names]


def test_logprobs_name_the_greedy_token_and_its_alternatives(client: httpx.Client) -> None:
    body = _complete(client, prompt=PROMPTS[0], logprobs=3, return_tokens_as_token_ids=True)
    choice = body["choices"][0]  # type: ignore[index]
    lp = choice["logprobs"]
    assert len(lp["tokens"]) == body["usage"]["completion_tokens"] == 8  # type: ignore[index]
    rows = zip(lp["tokens"], lp["token_logprobs"], lp["top_logprobs"], strict=True)
    for name, value, top in rows:
        assert value <= 0 and name in top and top[name] == value
        assert 3 <= len(top) <= 4
        assert value == max(top.values())  # greedy: the chosen token is the most likely
    assert lp["text_offset"][0] == 0 and lp["text_offset"] == sorted(lp["text_offset"])
    plain = _complete(client, prompt=PROMPTS[0])
    assert plain["choices"][0]["logprobs"] is None  # type: ignore[index]


def test_echo_scores_the_prompt_like_generation_scored_it(client: httpx.Client) -> None:
    gen = _complete(
        client, prompt=PROMPTS[1], echo=True, logprobs=0, return_tokens_as_token_ids=True
    )
    lp = gen["choices"][0]["logprobs"]  # type: ignore[index]
    n_prompt = gen["usage"]["prompt_tokens"]  # type: ignore[index]
    ids = _ids(lp["tokens"])
    assert lp["token_logprobs"][0] is None and len(ids) == n_prompt + 8
    assert gen["choices"][0]["text"].startswith(PROMPTS[1])  # type: ignore[index]
    # Teacher-forced scoring of prompt + answer (a token-id prompt) gives the generated
    # tokens the log-probabilities the incremental decode gave them.
    scored = _complete(
        client, prompt=ids, echo=True, logprobs=5, max_tokens=1, return_tokens_as_token_ids=True
    )
    slp = scored["choices"][0]["logprobs"]  # type: ignore[index]
    assert _ids(slp["tokens"][: len(ids)]) == ids
    for i in range(n_prompt, len(ids)):
        assert math.isclose(slp["token_logprobs"][i], lp["token_logprobs"][i], abs_tol=1e-4)
        assert f"token_id:{ids[i]}" in slp["top_logprobs"][i]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": "x", "logprobs": 21}, "logprobs"),
        ({"prompt": "x", "logprobs": -1}, "logprobs"),
        ({"prompt": "x", "logprobs": 1, "stream": True}, "logprobs"),
        ({"prompt": "x", "echo": True, "stream": True}, "echo"),
        ({"prompt": [1, 999]}, "prompt"),
        ({"prompt": []}, "prompt"),
    ],
)
def test_bad_logprob_requests_are_400_naming_the_field(
    client: httpx.Client, body: dict[str, object], param: str
) -> None:
    response = client.post("/v1/completions", json={"model": "tiny", **body})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def _answers(client: httpx.Client) -> list[str]:
    return [_complete(client, prompt=p, max_tokens=12)["choices"][0]["text"] for p in PROMPTS]  # type: ignore[index]


def test_weight_noise_changes_answers_and_clearing_restores_them(client: httpx.Client) -> None:
    clean = _answers(client)
    other = client.put(
        "/admin/faults", json={"weight_noise": 0.2, "weight_noise_precisions": ["bf16"]}
    )
    assert other.status_code == 200 and other.json()["weight_noise"] == 0.2
    assert _answers(client) == clean  # fp32 serves, and only bf16 is perturbed
    noisy = client.put("/admin/faults", json={"weight_noise_precisions": ["fp32", "bf16"]})
    assert noisy.status_code == 200
    assert _answers(client) != clean
    assert client.delete("/admin/faults").json()["weight_noise"] == 0.0
    assert _answers(client) == clean


def test_weight_noise_needs_the_admin_token(server: RunningServer) -> None:
    response = httpx.put(f"{server.base_url}/admin/faults", json={"weight_noise": 0.1})
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"weight_noise": -0.1}, "weight_noise"),
        ({"weight_noise": 2}, "weight_noise"),
        ({"weight_noise": "lots"}, "weight_noise"),
        ({"weight_noise": 0.1, "weight_noise_precisions": ["fp8"]}, "weight_noise_precisions"),
        ({"weight_noise": 0.1, "weight_noise_precisions": []}, "weight_noise_precisions"),
        ({"weight_noise": 0.1, "weight_noise_seed": -1}, "weight_noise_seed"),
    ],
)
def test_bad_weight_noise_is_422_and_changes_nothing(
    client: httpx.Client, body: dict[str, object], param: str
) -> None:
    response = client.put("/admin/faults", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["param"] == param
    assert client.get("/admin/faults").json()["weight_noise"] == 0.0
