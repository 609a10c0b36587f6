"""Property-based fuzzing of the reference engine's OpenAPI schema (model ``tiny``, real
generation) with its admin token: no request may get a 5xx, and no response may break the
schema the engine publishes for it."""

from __future__ import annotations

from collections import Counter

import pytest

from engine.config import EngineConfig
from tests.engine.serving import serve_engine
from tests.fuzzing import fuzz

pytestmark = pytest.mark.slow


def test_fuzzed_requests_get_no_5xx_and_match_the_schema() -> None:
    statuses: Counter[int] = Counter()
    with serve_engine(EngineConfig(max_batch_size=4)) as running:
        report = fuzz(
            running.base_url,
            headers=running.admin_headers,
            on_response=lambda _op, status: statuses.update([status]),
        )
        errors = running.engine.metrics.registry.get_sample_value(
            "engine_request_failures_total", {"model_name": "tiny", "reason": "error"}
        )
    assert {"POST /v1/completions", "POST /v1/chat/completions", "PUT /admin/config"} <= set(
        report.operations
    )
    assert not report.failures, "\n\n".join(report.failures[:10])
    assert errors == 0.0
    # Generated requests reached generation, not only the validation layer.
    assert statuses[200] > 0 and statuses[400] > 0
