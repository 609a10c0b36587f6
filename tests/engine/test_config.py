from __future__ import annotations

import pytest

from engine.config import ConfigError
from engine.config import EngineConfig
from engine.config import SearchSpace
from engine.config import merge_config

SPACE = SearchSpace(max_streams=4, precisions=("fp32", "bf16", "int8"))


def test_partial_patch_keeps_the_other_fields() -> None:
    current = EngineConfig(max_batch_size=8, streams=2, precision="bf16", max_queue_delay_ms=5)
    merged = merge_config(current, {"max_batch_size": 16})
    assert merged == EngineConfig(
        max_batch_size=16, streams=2, precision="bf16", max_queue_delay_ms=5
    )


@pytest.mark.parametrize(
    ("patch", "param"),
    [
        ({"max_batch_size": 0}, "max_batch_size"),
        ({"max_batch_size": 65}, "max_batch_size"),
        ({"streams": 1000}, "streams"),
        ({"precision": "fp4"}, "precision"),
        ({"precision": "fp16"}, "precision"),
        ({"max_queue_delay_ms": -1}, "max_queue_delay_ms"),
        ({"max_batch_size": "8"}, "max_batch_size"),
        ({"max_batch_size": True}, "max_batch_size"),
        ({"streams": 1.5}, "streams"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_invalid_patches_name_the_field(patch: dict[str, object], param: str) -> None:
    with pytest.raises(ConfigError) as info:
        SPACE.validate(merge_config(EngineConfig(), patch))
    assert info.value.param == param


def test_search_space_lists_the_legal_values() -> None:
    knobs = {k["name"]: k for k in SPACE.to_json()["knobs"]}
    assert knobs["precision"]["choices"] == ["fp32", "bf16", "int8"]
    assert knobs["streams"]["max"] == 4
    assert max(knobs["max_batch_size"]["choices"]) == knobs["max_batch_size"]["max"]
    for choice in knobs["max_batch_size"]["choices"]:
        SPACE.validate(EngineConfig(max_batch_size=choice))
