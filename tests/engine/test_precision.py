from __future__ import annotations

import pytest
import torch

from engine.config import ConfigError
from engine.config import EngineConfig
from engine.config import SearchSpace
from engine.model import MODEL_SPECS
from engine.model import build_model
from engine.precision import Int8WeightOnlyLinear
from engine.precision import UnsupportedPrecisionError
from engine.precision import prepare_model
from engine.precision import supported_precisions

CPU = torch.device("cpu")


def test_cpu_supports_fp32_and_int8_at_least() -> None:
    supported = supported_precisions(CPU)
    assert "fp32" in supported
    assert "int8" in supported


@pytest.mark.parametrize(
    ("precision", "tolerance"), [("bf16", 0.1), ("fp16", 0.05), ("int8", 0.1)]
)
def test_reduced_precision_logits_stay_close_to_fp32(precision: str, tolerance: float) -> None:
    base = build_model(MODEL_SPECS["tiny"], seed=0)
    if precision not in supported_precisions(CPU):
        pytest.skip(f"{precision} unsupported here")
    model = prepare_model(base, precision, CPU)  # type: ignore[arg-type]
    ids = torch.arange(1, 30)[None]
    with torch.inference_mode():
        ref = base(ids)
        out = model(ids)
    assert out.dtype == torch.float32
    assert (out - ref).abs().max().item() < tolerance * ref.abs().max().item() + tolerance


def test_int8_replaces_every_linear_and_keeps_fp32_base_untouched() -> None:
    base = build_model(MODEL_SPECS["tiny"], seed=0)
    model = prepare_model(base, "int8", CPU)
    assert not any(isinstance(m, torch.nn.Linear) for m in model.modules())
    assert any(isinstance(m, Int8WeightOnlyLinear) for m in model.modules())
    assert any(isinstance(m, torch.nn.Linear) for m in base.modules())


def test_unsupported_precision_is_refused_not_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.precision as precision_module

    monkeypatch.setattr(precision_module, "supported_precisions", lambda device: ("fp32",))
    base = build_model(MODEL_SPECS["tiny"], seed=0)
    with pytest.raises(UnsupportedPrecisionError, match="bf16"):
        prepare_model(base, "bf16", CPU)
    space = SearchSpace(max_streams=2, precisions=("fp32",))
    with pytest.raises(ConfigError) as info:
        space.validate(EngineConfig(precision="bf16"))
    assert info.value.param == "precision"
