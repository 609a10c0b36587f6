"""Admission: the bounded waiting queue shared by every executor, and the request object.

Executors pull from one queue at decode-step boundaries, which is what makes batching
continuous: a request joins the running batch at the next step and leaves it the step it
finishes. The queue is bounded so overload turns into fast 429s instead of unbounded
latency.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Literal

EventKind = Literal["token", "done", "error"]


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One position's log-probabilities: the token there and the ``top`` alternatives
    (token id, logprob), most likely first."""

    token: int
    logprob: float
    top: tuple[tuple[int, float], ...] = ()


class QueueFullError(Exception):
    """The waiting queue is at capacity; the caller should retry later."""

    def __init__(self, capacity: int, retry_after_s: int) -> None:
        super().__init__(f"the engine queue is full ({capacity} waiting requests)")
        self.capacity = capacity
        self.retry_after_s = retry_after_s


class AsyncSink:
    """Delivers events from executor threads to the request's asyncio loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.events: asyncio.Queue[tuple[EventKind, int | str]] = asyncio.Queue()

    def __call__(self, kind: EventKind, value: int | str) -> None:
        try:
            self._loop.call_soon_threadsafe(self.events.put_nowait, (kind, value))
        except RuntimeError:  # the loop is closed: nobody is listening any more
            pass


@dataclass(eq=False)
class GenerationRequest:
    prompt_ids: list[int]
    max_tokens: int
    sink: Callable[[EventKind, int | str], None]
    ignore_eos: bool = False
    stream_tokens: bool = True
    """Send a ``token`` event per token. Off for non-streaming requests: they only need the
    final ``done`` event, which saves one cross-thread wake-up of the event loop per token."""
    logprobs: int | None = None
    """Alternatives to report per generated token; ``None``: no log-probabilities at all."""
    prompt_logprobs: bool = False
    """Also score every prompt token (``echo`` with ``logprobs``): one full forward pass."""
    arrival: float = field(default_factory=time.perf_counter)
    admitted_at: float | None = None
    first_token_at: float | None = None
    last_token_at: float | None = None
    generated: list[int] = field(default_factory=list)
    generated_logprobs: list[TokenLogprob] = field(default_factory=list)
    prompt_token_logprobs: list[TokenLogprob] = field(default_factory=list)
    """Positions 1.. of the prompt (the first token has nothing before it to be scored by)."""
    finished_reason: str | None = None
    cancelled: bool = False

    def cancel(self) -> None:
        """Called from the API side when the client goes away; the executor drops the
        sequence at its next step boundary."""
        self.cancelled = True


class RequestQueue:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: deque[GenerationRequest] = deque()
        self._cond = threading.Condition()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, request: GenerationRequest) -> None:
        with self._cond:
            if len(self._items) >= self.capacity:
                raise QueueFullError(self.capacity, retry_after_s=1)
            self._items.append(request)
            self._cond.notify_all()

    def wake_all(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def take(
        self,
        max_n: int,
        *,
        block: bool,
        delay_s: float,
        stopping: Callable[[], bool],
        poll_s: float = 0.5,
    ) -> list[GenerationRequest]:
        """Up to ``max_n`` requests, oldest first.

        With ``block`` (the executor is idle) it waits for work, then for up to ``delay_s``
        after the oldest request's arrival for the batch to fill: the dynamic-batching
        trade of a little queueing latency for a larger first batch. A busy executor never
        blocks; new requests join its batch at the next step.
        """
        if max_n <= 0:
            return []
        with self._cond:
            if block:
                while not self._items and not stopping():
                    self._cond.wait(poll_s)
                if delay_s > 0 and self._items:
                    deadline = self._items[0].arrival + delay_s
                    while len(self._items) < max_n and not stopping():
                        remaining = deadline - time.perf_counter()
                        if remaining <= 0 or not self._items:
                            break
                        self._cond.wait(remaining)
            if stopping():
                return []
            taken: list[GenerationRequest] = []
            while self._items and len(taken) < max_n:
                taken.append(self._items.popleft())
            return taken

    def drain_all(self) -> list[GenerationRequest]:
        with self._cond:
            items = list(self._items)
            self._items.clear()
            return items
