"""The project's own load generator for OpenAI-compatible ``/v1/completions`` endpoints.

Open-loop (constant-rate or Poisson arrivals) measures how an engine copes with a given
offered load, queueing included: requests are sent on schedule whether or not earlier ones
have finished, which is what exposes tail latency. Closed-loop (a fixed number of users
each sending the next request when the previous one returns) measures capacity, and is what
``wrk`` does, so the two can be cross-checked. Every run is bounded by duration and,
optionally, by count.

Prompt lengths are in characters; on the reference engine's byte-level tokenizer that is
the token count (plus one BOS token).
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Literal

import httpx

Mode = Literal["constant", "poisson", "closed"]
Status = Literal["ok", "failed", "rejected"]


@dataclass(frozen=True)
class RequestShape:
    """One entry of the prompt-length / output-length mix, drawn with ``weight``."""

    prompt_len: int
    max_tokens: int
    weight: float = 1.0


@dataclass(frozen=True)
class LoadSpec:
    base_url: str
    model: str
    mode: Mode = "constant"
    rate: float | None = None
    """Requests per second for the open-loop modes."""
    concurrency: int | None = None
    """Number of users for the closed-loop mode."""
    duration_s: float = 10.0
    max_requests: int | None = None
    shapes: tuple[RequestShape, ...] = (RequestShape(prompt_len=32, max_tokens=16),)
    stream: bool = False
    timeout_s: float = 30.0
    """Total time allowed for one request, queueing and streaming included."""
    seed: int = 0
    extra_body: Mapping[str, Any] = field(default_factory=dict, hash=False)
    """Merged into every request body, e.g. ``{"ignore_eos": True}`` for fixed lengths."""
    api_key: str | None = None
    prompts: tuple[str, ...] = ()
    """Prompt texts sent in turn instead of generated ones (a shape still sets max_tokens)."""

    def __post_init__(self) -> None:
        if self.mode in ("constant", "poisson"):
            if self.rate is None or not (self.rate > 0 and math.isfinite(self.rate)):
                raise ValueError(f"mode {self.mode!r} needs a positive rate, got {self.rate}")
        elif self.mode == "closed":
            if self.concurrency is None or self.concurrency < 1:
                raise ValueError(f"closed-loop mode needs concurrency >= 1: {self.concurrency}")
        else:
            raise ValueError(f"unknown mode {self.mode!r}")
        if not self.duration_s > 0:
            raise ValueError(f"duration_s must be > 0, got {self.duration_s}")
        if self.max_requests is not None and self.max_requests < 1:
            raise ValueError(f"max_requests must be >= 1, got {self.max_requests}")
        if not self.shapes:
            raise ValueError("shapes must not be empty")
        for shape in self.shapes:
            if shape.prompt_len < 0 or shape.max_tokens < 1 or not shape.weight > 0:
                raise ValueError(f"invalid request shape {shape}")


@dataclass(frozen=True)
class RequestRecord:
    start_s: float
    """Send time relative to the start of the run."""
    latency_s: float
    ttft_s: float | None
    status: Status
    http_status: int | None
    completion_tokens: int
    error: str | None = None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (``q`` in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class LoadResult:
    spec: LoadSpec
    records: tuple[RequestRecord, ...]
    wall_s: float
    """From the first send to the last response."""

    @property
    def sent(self) -> int:
        return len(self.records)

    def _count(self, status: Status) -> int:
        return sum(1 for r in self.records if r.status == status)

    @property
    def ok(self) -> int:
        return self._count("ok")

    @property
    def failed(self) -> int:
        return self._count("failed")

    @property
    def rejected(self) -> int:
        return self._count("rejected")

    @property
    def latencies(self) -> tuple[float, ...]:
        return tuple(r.latency_s for r in self.records if r.status == "ok")

    @property
    def ttfts(self) -> tuple[float, ...]:
        return tuple(r.ttft_s for r in self.records if r.status == "ok" and r.ttft_s is not None)

    @property
    def achieved_rps(self) -> float:
        """Successful requests per second of wall time."""
        return self.ok / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def output_tokens_per_s(self) -> float:
        tokens = sum(r.completion_tokens for r in self.records if r.status == "ok")
        return tokens / self.wall_s if self.wall_s > 0 else 0.0

    def latency_percentile(self, q: float) -> float | None:
        return percentile(self.latencies, q)

    @property
    def p50(self) -> float | None:
        return percentile(self.latencies, 50)

    @property
    def p95(self) -> float | None:
        return percentile(self.latencies, 95)

    @property
    def p99(self) -> float | None:
        return percentile(self.latencies, 99)

    @property
    def ttft_p50(self) -> float | None:
        return percentile(self.ttfts, 50)

    @property
    def ttft_p95(self) -> float | None:
        return percentile(self.ttfts, 95)

    @property
    def ttft_p99(self) -> float | None:
        return percentile(self.ttfts, 99)

    @property
    def time_per_output_token(self) -> tuple[float, ...]:
        """Streamed requests: (latency - TTFT) / (tokens - 1), the decode pace a user sees."""
        return tuple(
            (r.latency_s - r.ttft_s) / (r.completion_tokens - 1)
            for r in self.records
            if r.status == "ok" and r.ttft_s is not None and r.completion_tokens > 1
        )

    def goodput(self, slo_s: float) -> float:
        """Requests per second that succeeded within ``slo_s``."""
        good = sum(1 for latency in self.latencies if latency <= slo_s)
        return good / self.wall_s if self.wall_s > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "mode": self.spec.mode,
            "sent": self.sent,
            "ok": self.ok,
            "failed": self.failed,
            "rejected": self.rejected,
            "wall_s": self.wall_s,
            "achieved_rps": self.achieved_rps,
            "output_tokens_per_s": self.output_tokens_per_s,
            "p50_s": self.p50,
            "p95_s": self.p95,
            "p99_s": self.p99,
            "ttft_p50_s": self.ttft_p50,
            "ttft_p95_s": self.ttft_p95,
            "ttft_p99_s": self.ttft_p99,
        }


def _prompt(length: int, index: int) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz "
    return "".join(alphabet[(index * 7 + i) % len(alphabet)] for i in range(length))


class _Runner:
    def __init__(self, spec: LoadSpec, client: httpx.AsyncClient) -> None:
        self.spec = spec
        self.client = client
        self.rng = random.Random(spec.seed)
        self.records: list[RequestRecord] = []
        self.issued = 0
        self.t0 = time.perf_counter()
        self.last_end = self.t0

    def _next_body(self) -> dict[str, Any]:
        spec = self.spec
        shape = self.rng.choices(spec.shapes, weights=[s.weight for s in spec.shapes])[0]
        body: dict[str, Any] = {
            "model": spec.model,
            "prompt": (
                spec.prompts[self.issued % len(spec.prompts)]
                if spec.prompts
                else _prompt(shape.prompt_len, self.issued)
            ),
            "max_tokens": shape.max_tokens,
            "stream": spec.stream,
            **spec.extra_body,
        }
        if spec.stream:
            body["stream_options"] = {"include_usage": True}
        self.issued += 1
        return body

    def _may_issue(self) -> bool:
        spec = self.spec
        if spec.max_requests is not None and self.issued >= spec.max_requests:
            return False
        return time.perf_counter() - self.t0 < spec.duration_s

    async def one(self, body: dict[str, Any]) -> None:
        start = time.perf_counter()
        ttft: float | None = None
        tokens = 0
        status_code: int | None = None
        try:
            async with asyncio.timeout(self.spec.timeout_s):
                if self.spec.stream:
                    async with self.client.stream(
                        "POST", "/v1/completions", json=body
                    ) as response:
                        status_code = response.status_code
                        if status_code == 200:
                            async for line in response.aiter_lines():
                                if not line.startswith("data: ") or line == "data: [DONE]":
                                    continue
                                chunk = json.loads(line[6:])
                                if "error" in chunk:
                                    raise RuntimeError(str(chunk["error"].get("message")))
                                if chunk.get("usage"):
                                    tokens = int(chunk["usage"]["completion_tokens"])
                                if ttft is None and any(c.get("text") for c in chunk["choices"]):
                                    ttft = time.perf_counter() - start
                        else:
                            await response.aread()
                else:
                    response = await self.client.post("/v1/completions", json=body)
                    status_code = response.status_code
                    if status_code == 200:
                        tokens = int(response.json()["usage"]["completion_tokens"])
        except TimeoutError:
            self._record(start, ttft, "failed", status_code, tokens, "timeout")
            return
        except (httpx.HTTPError, RuntimeError, ValueError, KeyError) as exc:
            self._record(
                start, ttft, "failed", status_code, tokens, f"{type(exc).__name__}: {exc}"
            )
            return
        if status_code == 200:
            self._record(start, ttft, "ok", status_code, tokens, None)
        elif status_code == 429:
            self._record(start, ttft, "rejected", status_code, 0, "HTTP 429")
        else:
            self._record(start, ttft, "failed", status_code, 0, f"HTTP {status_code}")

    def _record(
        self,
        start: float,
        ttft: float | None,
        status: Status,
        http_status: int | None,
        tokens: int,
        error: str | None,
    ) -> None:
        end = time.perf_counter()
        self.last_end = max(self.last_end, end)
        self.records.append(
            RequestRecord(
                start_s=start - self.t0,
                latency_s=end - start,
                ttft_s=ttft,
                status=status,
                http_status=http_status,
                completion_tokens=tokens,
                error=error,
            )
        )

    async def open_loop(self) -> None:
        rate = self.spec.rate
        assert rate is not None
        tasks: list[asyncio.Task[None]] = []
        arrival = 0.0
        # The schedule, not the wall clock, decides what is sent: a seeded run always sends
        # the same requests even if this process falls behind.
        limit = self.spec.max_requests
        while arrival < self.spec.duration_s and (limit is None or self.issued < limit):
            delay = self.t0 + arrival - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.one(self._next_body())))
            gap = self.rng.expovariate(rate) if self.spec.mode == "poisson" else 1.0 / rate
            arrival += gap
        await asyncio.gather(*tasks)

    async def closed_loop(self) -> None:
        async def user() -> None:
            while self._may_issue():
                await self.one(self._next_body())

        concurrency = self.spec.concurrency
        assert concurrency is not None
        await asyncio.gather(*(user() for _ in range(concurrency)))


async def run_load(spec: LoadSpec, client: httpx.AsyncClient | None = None) -> LoadResult:
    """Runs one load test; ``client`` may be supplied (its base URL must be the server's)."""
    headers = {"Authorization": f"Bearer {spec.api_key}"} if spec.api_key else {}
    own = client is None
    if client is None:
        limit = spec.concurrency if spec.mode == "closed" else None
        client = httpx.AsyncClient(
            base_url=spec.base_url,
            timeout=spec.timeout_s,
            headers=headers,
            # Idle connections expire on our side well before a server's own keep-alive
            # timeout (uvicorn's default is 5 s, the same as httpx's): otherwise a request
            # sent on a connection the server is closing fails with a ReadError, which
            # counted against engines as failed requests.
            limits=httpx.Limits(
                max_connections=limit, max_keepalive_connections=limit, keepalive_expiry=2.0
            ),
        )
    try:
        runner = _Runner(spec, client)
        if spec.mode == "closed":
            await runner.closed_loop()
        else:
            await runner.open_loop()
    finally:
        if own:
            await client.aclose()
    records = tuple(sorted(runner.records, key=lambda r: r.start_s))
    first = records[0].start_s if records else 0.0
    return LoadResult(
        spec=spec, records=records, wall_s=max(0.0, runner.last_end - runner.t0 - first)
    )


def run_load_sync(spec: LoadSpec) -> LoadResult:
    return asyncio.run(run_load(spec))
