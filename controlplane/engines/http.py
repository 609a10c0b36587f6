"""HTTP plumbing shared by adapters: explicit timeouts and one translation of failures into
domain errors, so every adapter reports an unreachable or refusing engine the same way."""

from __future__ import annotations

import time
from typing import Any

import httpx

from controlplane.domain import EngineRejectedError
from controlplane.domain import EngineTarget
from controlplane.domain import EngineUnreachableError
from controlplane.domain import Health

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
        raise EngineUnreachableError(
            f"engine {engine!r} at {client.base_url}: {type(exc).__name__}: {exc}"
        ) from exc
    if response.status_code in (400, 409, 422):
        raise EngineRejectedError(
            f"engine {engine!r} refused {method} {path}: {_message(response)}",
            field=_param(response),
        )
    if response.status_code >= 300:
        raise EngineUnreachableError(
            f"engine {engine!r} answered {method} {path} with HTTP {response.status_code}: "
            f"{_message(response)}"
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
        return Health(ok=False, detail=f"{type(exc).__name__}: {exc}")
    latency = time.monotonic() - started
    if response.status_code != 200:
        return Health(ok=False, detail=f"HTTP {response.status_code}", latency_s=latency)
    return Health(ok=True, detail="ok", latency_s=latency)


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and "message" in error:
            return str(error["message"])
        if "detail" in body:
            return str(body["detail"])
    return str(body)[:200]


def _param(response: httpx.Response) -> str | None:
    try:
        error = response.json().get("error", {})
    except (ValueError, AttributeError):
        return None
    param = error.get("param") if isinstance(error, dict) else None
    return str(param) if param else None
