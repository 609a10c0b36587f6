"""HTTP plumbing shared by adapters: explicit timeouts and one translation of failures into
domain errors, so every adapter reports an unreachable or refusing engine the same way.

Error messages never carry what a target answered: an engine URL may point anywhere, and an
error that echoed the body would let whoever can edit engines read other services through
the control plane. A refusal (400/409/422) keeps only the reason of the engine's own error
shape (``{"error": {"message": ...}}``), shortened and stripped of control characters; any
other failure names the HTTP status alone. URLs in messages lose their credentials.
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

from controlplane.domain import EngineRejectedError
from controlplane.domain import EngineTarget
from controlplane.domain import EngineUnreachableError
from controlplane.domain import Health
from controlplane.domain import redact_url
from controlplane.domain import redact_urls_in

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)


def make_client(target: EngineTarget, *, timeout: httpx.Timeout = DEFAULT_TIMEOUT) -> httpx.Client:
    headers = {"Authorization": f"Bearer {target.admin_token}"} if target.admin_token else {}
    return httpx.Client(base_url=target.url, headers=headers, timeout=timeout)


def request_json(
    client: httpx.Client,
    method: str,
    path: str,
    *,
    engine: str,
    json: Any = None,
    timeout: httpx.Timeout | float | None = None,
) -> Any:
    """Send a request and return its JSON body, or raise the matching domain error."""
    try:
        kwargs: dict[str, Any] = {"json": json}
        if timeout is not None:
            kwargs["timeout"] = timeout
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        where = redact_url(str(client.base_url))
        raise EngineUnreachableError(
            f"engine {engine!r} at {where}: {type(exc).__name__}: {redact_urls_in(str(exc))}"
        ) from exc
    if response.status_code in (400, 409, 422):
        raise EngineRejectedError(
            f"engine {engine!r} refused {method} {path}: {_reason(response)}",
            field=_param(response),
        )
    if response.status_code >= 300:
        raise EngineUnreachableError(
            f"engine {engine!r} answered {method} {path} with HTTP {response.status_code}"
        )
    try:
        return response.json()
    except ValueError as exc:
        raise EngineUnreachableError(f"engine {engine!r}: {path} did not return JSON") from exc


def probe(client: httpx.Client, path: str) -> Health:
    started = time.monotonic()
    try:
        response = client.get(path, timeout=httpx.Timeout(3.0, connect=1.0))
    except httpx.HTTPError as exc:
        return Health(ok=False, detail=f"{type(exc).__name__}: {redact_urls_in(str(exc))}")
    latency = time.monotonic() - started
    if response.status_code != 200:
        return Health(ok=False, detail=f"HTTP {response.status_code}", latency_s=latency)
    return Health(ok=True, detail="ok", latency_s=latency)


class ModelName:
    """The first model an OpenAI-style server lists, read once and kept."""

    def __init__(self) -> None:
        self.value: str | None = None

    def get(self, client: httpx.Client, timeout: httpx.Timeout) -> str:
        if self.value is None:
            body = client.get("/v1/models", timeout=timeout).json()
            models = body.get("data") if isinstance(body, dict) else None
            if not models or not isinstance(models[0], dict) or "id" not in models[0]:
                raise ValueError("/v1/models lists no model")
            self.value = str(models[0]["id"])
        return self.value


def check_completion(client: httpx.Client, *, timeout_s: float, model: ModelName) -> Health:
    """One greedy two-token completion on ``/v1/completions``, judged by its shape."""
    started = time.monotonic()
    timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 3.0))
    try:
        name = model.get(client, timeout)
        remaining = timeout_s - (time.monotonic() - started)
        if remaining <= 0:
            raise httpx.TimeoutException("no time left after reading the model name")
        response = client.post(
            "/v1/completions",
            json={
                "model": name,
                "prompt": "health check",
                "max_tokens": 2,
                "temperature": 0,
                "ignore_eos": True,
            },
            timeout=httpx.Timeout(remaining, connect=min(remaining, 3.0)),
        )
    except httpx.TimeoutException:
        return Health(ok=False, detail=f"timeout: no answer within {timeout_s:g} s")
    except httpx.HTTPError as exc:
        return Health(ok=False, detail=f"error: {type(exc).__name__}: {exc}")
    except ValueError as exc:
        return Health(ok=False, detail=f"wrong shape: {exc}")
    latency = time.monotonic() - started
    if response.status_code != 200:
        detail = f"error: HTTP {response.status_code}: {_reason(response)}"
        return Health(ok=False, detail=detail, latency_s=latency)
    problem = _completion_problem(response)
    if problem:
        return Health(ok=False, detail=f"wrong shape: {problem}", latency_s=latency)
    return Health(ok=True, detail="ok", latency_s=latency)


def _completion_problem(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return "the answer is not JSON"
    choices = body.get("choices") if isinstance(body, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return "no choices in the answer"
    choice = choices[0]
    if not isinstance(choice.get("text"), str):
        return "the choice has no text"
    if choice.get("finish_reason") not in ("length", "stop"):
        return f"finish_reason {choice.get('finish_reason')!r}"
    usage = body.get("usage")
    tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
    if not isinstance(tokens, int) or tokens < 1:
        return f"completion_tokens {tokens!r}, expected at least 1"
    return None


_REASON_CHARS = 200
_PARAM = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,63}")


def _reason(response: httpx.Response) -> str:
    """The engine's stated reason from its own error shape, or a placeholder: never the raw
    body of whatever answered."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}, no reason given"
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    if not isinstance(message, str) or not message.strip():
        return f"HTTP {response.status_code}, no reason given"
    clean = "".join(ch if ch.isprintable() else " " for ch in message).strip()
    return clean if len(clean) <= _REASON_CHARS else clean[: _REASON_CHARS - 3] + "..."


def _param(response: httpx.Response) -> str | None:
    try:
        error = response.json().get("error", {})
    except (ValueError, AttributeError):
        return None
    param = error.get("param") if isinstance(error, dict) else None
    # A field name, or nothing: the value lands in the 422's loc, so it is not free text.
    return param if isinstance(param, str) and _PARAM.fullmatch(param) else None
