from __future__ import annotations

import threading
import time

import pytest

from engine.batcher import GenerationRequest
from engine.batcher import QueueFullError
from engine.batcher import RequestQueue


def _request(max_tokens: int = 1) -> GenerationRequest:
    return GenerationRequest(prompt_ids=[1, 2], max_tokens=max_tokens, sink=lambda k, v: None)


def test_queue_is_bounded_and_tells_when_to_retry() -> None:
    queue = RequestQueue(capacity=2)
    queue.put(_request())
    queue.put(_request())
    with pytest.raises(QueueFullError) as info:
        queue.put(_request())
    assert info.value.retry_after_s >= 1
    assert len(queue) == 2


def test_take_returns_oldest_first_up_to_the_free_slots() -> None:
    queue = RequestQueue(capacity=10)
    requests = [_request() for _ in range(5)]
    for r in requests:
        queue.put(r)
    taken = queue.take(3, block=False, delay_s=0.0, stopping=lambda: False)
    assert taken == requests[:3]
    assert len(queue) == 2


def test_idle_take_waits_for_the_batch_to_fill_within_the_delay() -> None:
    queue = RequestQueue(capacity=10)
    queue.put(_request())
    later = _request()
    threading.Timer(0.05, queue.put, args=(later,)).start()
    taken = queue.take(2, block=True, delay_s=5.0, stopping=lambda: False)
    assert len(taken) == 2  # returned as soon as the batch was full, not after 5 s
    assert taken[1] is later


def test_idle_take_gives_up_waiting_after_the_delay() -> None:
    queue = RequestQueue(capacity=10)
    queue.put(_request())
    start = time.perf_counter()
    taken = queue.take(4, block=True, delay_s=0.05, stopping=lambda: False)
    assert len(taken) == 1
    assert time.perf_counter() - start < 2.0


def test_stopping_executor_takes_nothing() -> None:
    queue = RequestQueue(capacity=10)
    queue.put(_request())
    assert queue.take(4, block=True, delay_s=0.0, stopping=lambda: True) == []
    assert len(queue) == 1
