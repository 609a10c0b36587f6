"""Greedy answers and teacher-forced scores through an OpenAI-style ``/v1/completions``,
the way vLLM serves them: ``echo`` with ``logprobs`` scores the prompt's own tokens, a
prompt may be a list of token ids, and ``return_tokens_as_token_ids`` names every token
``token_id:N`` so a byte that is no text on its own still has an exact name. Shared by the
adapters of engines that speak this API (the reference engine; vLLM and SGLang too)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from controlplane.domain import EngineUnreachableError
from controlplane.domain.quality import GreedyAnswer
from controlplane.domain.quality import PositionScore
from controlplane.engines.http import ModelName
from controlplane.engines.http import request_json

_PREFIX = "token_id:"


def greedy(
    client: httpx.Client,
    model: ModelName,
    *,
    engine: str,
    prompt: str,
    max_tokens: int,
    timeout_s: float,
) -> GreedyAnswer:
    timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 3.0))
    body = _complete(
        client,
        engine,
        timeout,
        {
            "model": model.get(client, timeout),
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": 0,
            "echo": True,
            "logprobs": 0,
            "return_tokens_as_token_ids": True,
        },
    )
    choice, logprobs = _choice(body, engine)
    ids = [_token_id(t, engine) for t in logprobs.get("tokens") or ()]
    usage = body.get("usage")
    n_prompt = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    if not isinstance(n_prompt, int) or not 0 < n_prompt <= len(ids):
        raise EngineUnreachableError(f"engine {engine!r}: the answer does not count its prompt")
    return GreedyAnswer(
        prompt_tokens=tuple(ids[:n_prompt]),
        tokens=tuple(ids[n_prompt:]),
        finish_reason=str(choice.get("finish_reason")),
    )


def score(
    client: httpx.Client,
    model: ModelName,
    *,
    engine: str,
    tokens: Sequence[int],
    start: int,
    top_k: int,
    timeout_s: float,
) -> tuple[PositionScore, ...]:
    if not 0 < start <= len(tokens):
        raise ValueError("start must point inside the tokens, after the first one")
    timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 3.0))
    body = _complete(
        client,
        engine,
        timeout,
        {
            "model": model.get(client, timeout),
            "prompt": list(tokens),
            "max_tokens": 1,
            "temperature": 0,
            "echo": True,
            "logprobs": top_k,
            "return_tokens_as_token_ids": True,
        },
    )
    _, logprobs = _choice(body, engine)
    values = logprobs.get("token_logprobs") or []
    tops = logprobs.get("top_logprobs") or []
    if len(values) < len(tokens) or len(tops) < len(tokens):
        raise EngineUnreachableError(f"engine {engine!r}: the prompt's tokens were not scored")
    scores = []
    for i in range(start, len(tokens)):
        value, top = values[i], tops[i]
        if not isinstance(value, int | float) or not isinstance(top, dict):
            raise EngineUnreachableError(f"engine {engine!r}: position {i} has no logprob")
        ranked = sorted(
            ((_token_id(name, engine), float(lp)) for name, lp in top.items()),
            key=lambda item: -item[1],
        )
        scores.append(PositionScore(float(value), tuple(ranked[:top_k])))
    return tuple(scores)


def _complete(
    client: httpx.Client, engine: str, timeout: httpx.Timeout, payload: dict[str, Any]
) -> dict[str, Any]:
    body = request_json(
        client, "POST", "/v1/completions", engine=engine, json=payload, timeout=timeout
    )
    if not isinstance(body, dict):
        raise EngineUnreachableError(f"engine {engine!r}: the completion is not a JSON object")
    return body


def _choice(body: dict[str, Any], engine: str) -> tuple[dict[str, Any], dict[str, Any]]:
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise EngineUnreachableError(f"engine {engine!r}: the completion has no choice")
    logprobs = choices[0].get("logprobs")
    if not isinstance(logprobs, dict):
        raise EngineUnreachableError(f"engine {engine!r}: the completion has no logprobs")
    return choices[0], logprobs


def _token_id(name: object, engine: str) -> int:
    if isinstance(name, str) and name.startswith(_PREFIX) and name[len(_PREFIX) :].isdigit():
        return int(name[len(_PREFIX) :])
    raise EngineUnreachableError(f"engine {engine!r}: a token is not named token_id:N")
