"""Fetch one ``/metrics`` body over HTTP, bounded in time and size.

httpx's timeouts bound each network operation, not the whole response, so a server that
drips one byte a second would hold a scraper forever: the read loop also checks a total
deadline. The body is streamed and reading stops as soon as it passes ``max_bytes``
(counted after content decoding, so a gzip bomb is cut off too); a ``Content-Length``
already over the cap is refused before reading. HTML (a login page, a proxy error) is
refused by content type.
"""

from __future__ import annotations

import time

import httpx


class FetchError(Exception):
    """The body could not be fetched within the limits; ``reason`` is a short label for
    the failure counter (timeout, too_large, http_status, connect, html, decode)."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def fetch_text(
    client: httpx.Client, url: str, *, timeout_s: float, max_bytes: int, chunk_bytes: int = 65536
) -> str:
    """GET ``url`` and return the body as text.

    Raises:
        FetchError: timeout, refused connection, non-200 answer, HTML, body over
            ``max_bytes``, or a body that is not UTF-8.
    """
    deadline = time.monotonic() + timeout_s
    timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 3.0))
    headers = {"Accept": "text/plain;version=0.0.4;q=1,*/*;q=0.1"}
    try:
        with client.stream("GET", url, timeout=timeout, headers=headers) as response:
            if response.status_code != 200:
                raise FetchError(f"HTTP {response.status_code}", reason="http_status")
            ctype = response.headers.get("content-type", "").lower()
            if ctype.startswith("text/html"):
                raise FetchError(f"content type {ctype!r} is not exposition", reason="html")
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise FetchError(
                    f"body of {declared} bytes is over the {max_bytes}-byte cap",
                    reason="too_large",
                )
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes(chunk_size=min(chunk_bytes, max_bytes + 1)):
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError(f"body over the {max_bytes}-byte cap", reason="too_large")
                if time.monotonic() > deadline:
                    raise FetchError(f"body not complete within {timeout_s:g} s", reason="timeout")
                chunks.append(chunk)
    except httpx.TimeoutException as exc:
        raise FetchError(f"timed out after {timeout_s:g} s: {exc}", reason="timeout") from exc
    except httpx.HTTPError as exc:
        raise FetchError(f"{type(exc).__name__}: {exc}", reason="connect") from exc
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FetchError(f"body is not UTF-8: {exc}", reason="decode") from exc
