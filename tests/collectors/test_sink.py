from __future__ import annotations

import threading
from collections.abc import Sequence

from prometheus_client import CollectorRegistry

from collectors import CollectorHealth
from collectors import SampleSink
from controlplane.domain import Sample
from tests.collectors.helpers import wait_for


def _samples(n: int) -> list[Sample]:
    return [Sample(float(i), "e", "m", (), float(i)) for i in range(n)]


class FlakyStore:
    def __init__(self) -> None:
        self.up = threading.Event()
        self.batches: list[int] = []

    def __call__(self, batch: Sequence[Sample]) -> None:
        if not self.up.is_set():
            raise ConnectionError("store unreachable")
        self.batches.append(len(batch))


def test_batches_and_flush() -> None:
    store = FlakyStore()
    store.up.set()
    health = CollectorHealth(CollectorRegistry())
    sink = SampleSink(store, health=health, capacity=1000, batch_size=100, flush_interval_s=5)
    sink.start()
    assert sink.offer(_samples(250)) == 250
    assert sink.flush(10)
    assert sum(store.batches) == 250 and max(store.batches) == 100
    assert health.registry.get_sample_value("cplane_sink_written_samples_total") == 250
    sink.close()


def test_unreachable_store_back_pressure_drops_are_counted_then_recovers() -> None:
    store = FlakyStore()
    health = CollectorHealth(CollectorRegistry())
    sink = SampleSink(
        store,
        health=health,
        capacity=200,
        batch_size=50,
        flush_interval_s=0.01,
        max_backoff_s=0.05,
    )
    sink.start()
    assert sink.offer(_samples(150)) == 150
    wait_for(lambda: sink.failures >= 2, what="retries against the dead store")
    assert sink.offer(_samples(100), timeout_s=0.05) == 50  # held back, then the rest dropped
    assert sink.dropped == 50
    dropped = health.registry.get_sample_value(
        "cplane_sink_dropped_samples_total", {"reason": "buffer_full"}
    )
    assert dropped == 50
    assert health.registry.get_sample_value("cplane_sink_buffer_samples") == 200
    store.up.set()
    assert sink.flush(10)
    assert sum(store.batches) == 200  # nothing accepted was lost
    sink.close()
