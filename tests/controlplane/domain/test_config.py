from __future__ import annotations

import pytest

from controlplane.domain import Knob
from controlplane.domain import SearchSpace
from controlplane.domain import ValidationError

SPACE = SearchSpace(
    (
        Knob("max_batch_size", "int", choices=(1, 2, 4, 8)),
        Knob("precision", "choice", choices=("fp32", "bf16")),
        Knob("max_queue_delay_ms", "float", low=0.0, high=50.0, default=2.0),
    )
)


def test_strings_from_a_command_line_are_coerced() -> None:
    assert SPACE.validate({"max_batch_size": "4", "max_queue_delay_ms": "2.5"}) == {
        "max_batch_size": 4,
        "max_queue_delay_ms": 2.5,
    }


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"max_batch_size": 3}, "max_batch_size"),
        ({"max_batch_size": "x"}, "max_batch_size"),
        ({"precision": "fp4"}, "precision"),
        ({"max_queue_delay_ms": 51}, "max_queue_delay_ms"),
        ({"max_queue_delay_ms": "nan"}, "max_queue_delay_ms"),
        ({"max_queue_delay_ms": True}, "max_queue_delay_ms"),
        ({"streams": 2}, "streams"),
    ],
)
def test_illegal_values_name_their_knob(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        SPACE.validate(changes)
    assert info.value.field == field


def test_grid_size_counts_discrete_values() -> None:
    assert SPACE.grid_size() == 4 * 2 * 3


def test_a_knob_needs_values() -> None:
    with pytest.raises(ValueError):
        Knob("streams", "int")
