"""The contract every engine adapter must pass (in the manner of Optuna's StorageTestCase).

Subclass :class:`EngineAdapterContract` and provide an ``adapter`` fixture that returns an
adapter connected to a live engine, and a ``send_request`` fixture that serves one inference
request through the engine. The contract is the docstring of ``EngineAdapter``, as tests.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from controlplane.domain import EngineRejectedError
from controlplane.domain import ValidationError
from controlplane.engines.base import EngineAdapter

CANONICAL_KNOBS = ("max_batch_size", "streams", "precision")


class EngineAdapterContract:
    def test_implements_the_protocol(self, adapter: EngineAdapter) -> None:
        assert isinstance(adapter, EngineAdapter)

    def test_search_space_has_the_canonical_knobs(self, adapter: EngineAdapter) -> None:
        space = adapter.search_space()
        for name in CANONICAL_KNOBS:
            assert name in space, name
            assert len(space.knob(name).values()) >= 1

    def test_current_config_is_legal(self, adapter: EngineAdapter) -> None:
        config = adapter.current_config()
        space = adapter.search_space()
        assert set(CANONICAL_KNOBS) <= set(config)
        assert space.validate({k: v for k, v in config.items() if k in space}) == {
            k: v for k, v in config.items() if k in space
        }

    def test_apply_returns_when_serving_the_new_config(
        self, adapter: EngineAdapter, send_request: Callable[[], None]
    ) -> None:
        before = adapter.current_config()
        values = adapter.search_space().knob("max_batch_size").values()
        target = next(v for v in values if v != before["max_batch_size"])
        try:
            served = adapter.apply({"max_batch_size": target})
            assert served["max_batch_size"] == target
            assert adapter.current_config()["max_batch_size"] == target
            send_request()  # serving right away, with the new config
        finally:
            adapter.apply({"max_batch_size": before["max_batch_size"]})

    @pytest.mark.parametrize(
        "changes",
        [{"max_batch_size": 0}, {"streams": 1000}, {"precision": "fp4"}, {"no_such_knob": 1}],
    )
    def test_illegal_changes_are_refused_and_leave_the_engine_alone(
        self, adapter: EngineAdapter, changes: dict[str, object]
    ) -> None:
        before = adapter.current_config()
        with pytest.raises(ValidationError):
            adapter.apply(changes)  # type: ignore[arg-type]
        assert adapter.current_config() == before

    def test_health_is_ok(self, adapter: EngineAdapter) -> None:
        health = adapter.health()
        assert health.ok, health.detail
        assert health.latency_s is not None and health.latency_s >= 0

    def test_check_inference_serves_a_real_request(self, adapter: EngineAdapter) -> None:
        health = adapter.check_inference(timeout_s=30.0)
        assert health.ok, health.detail
        assert health.latency_s is not None and health.latency_s > 0

    def test_check_inference_times_out_rather_than_hangs(self, adapter: EngineAdapter) -> None:
        health = adapter.check_inference(timeout_s=1e-4)
        assert not health.ok
        assert health.detail.startswith(("timeout", "error")), health.detail

    def test_every_mapped_metric_is_exposed(
        self, adapter: EngineAdapter, send_request: Callable[[], None]
    ) -> None:
        send_request()
        text = httpx.get(adapter.metrics_url, timeout=10).text
        families = {f.name: f.type for f in text_string_to_metric_families(text)}
        for series, sources in adapter.metric_map.items():
            for source in sources:
                assert source.name in families, (series, source.name)
                assert families[source.name] == source.type, (series, source.name)

    # -- the quality probe's operations (only for kinds that declare measures) -----------

    def test_quality_declarations_are_consistent(self, adapter: EngineAdapter) -> None:
        assert adapter.quality_measures <= {"exact", "agreement", "kl"}
        if "kl" in adapter.quality_measures:
            assert {"exact", "agreement"} <= adapter.quality_measures
        assert adapter.quality_knobs <= {k.name for k in adapter.search_space()}

    def test_greedy_is_deterministic_and_scoring_agrees_with_it(
        self, adapter: EngineAdapter
    ) -> None:
        if not adapter.quality_measures:
            pytest.skip(f"kind {adapter.kind!r} declares no quality measures")
        first = adapter.greedy("contract probe", max_tokens=6, timeout_s=30)
        again = adapter.greedy("contract probe", max_tokens=6, timeout_s=30)
        assert first == again and len(first.tokens) >= 1 and first.prompt_tokens
        if "kl" not in adapter.quality_measures:
            return
        tokens = first.prompt_tokens + first.tokens
        scores = adapter.score(tokens, start=len(first.prompt_tokens), top_k=3, timeout_s=30)
        assert len(scores) == len(first.tokens)
        for token, score in zip(first.tokens, scores, strict=True):
            # Greedy: each answer token is the most likely one where it stands.
            assert score.logprob <= 0 and score.top and score.top[0][0] == token


__all__ = ["EngineAdapterContract", "EngineRejectedError"]
