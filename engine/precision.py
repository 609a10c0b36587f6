"""Numeric precision of a served model: fp32, bf16, fp16 and int8 weight-only.

int8 uses per-output-channel symmetric weight quantisation executed by
``torch.ops.aten._weight_int8pack_mm`` (the kernel torchao's int8 weight-only path uses on
CPU). ``torch.ao.quantization`` is deprecated in this torch release and warns on use, so it
is not an option. Which precisions a device supports is decided by probing a real kernel,
never assumed: an unsupported precision is refused, not silently replaced.
"""

from __future__ import annotations

import copy
import functools
from typing import Literal
from typing import cast

import torch
from torch import nn

from engine.model import CausalLM

Precision = Literal["fp32", "bf16", "fp16", "int8"]
ALL_PRECISIONS: tuple[Precision, ...] = ("fp32", "bf16", "fp16", "int8")

FLOAT_DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}


class UnsupportedPrecisionError(ValueError):
    """The requested precision cannot run on this device."""


class Int8WeightOnlyLinear(nn.Module):
    """A Linear whose weight is int8 with one fp scale per output channel.

    Activations stay in floating point; the kernel dequantises on the fly, which halves
    (bf16) or quarters (fp32) the weight bytes a memory-bound decode step has to read.
    """

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        scales = weight.abs().amax(dim=1).clamp(min=1e-8) / 127.0
        q = torch.round(weight / scales[:, None]).clamp(-128, 127).to(torch.int8)
        self.register_buffer("weight", q.contiguous())
        self.register_buffer("scales", scales.contiguous())
        bias = linear.bias.detach().float() if linear.bias is not None else None
        self.register_buffer("bias", bias)
        self.in_features = linear.in_features
        self.out_features = linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, self.in_features).contiguous()
        y = torch.ops.aten._weight_int8pack_mm(flat, self.weight, self.scales)
        if self.bias is not None:
            y = y + self.bias
        return cast(torch.Tensor, y.reshape(*shape[:-1], self.out_features))


def _quantize_linears(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.Linear):
            setattr(module, name, Int8WeightOnlyLinear(child))
        else:
            _quantize_linears(child)


def _probe(precision: Precision, device: torch.device) -> bool:
    try:
        linear = nn.Linear(64, 64).to(device)
        x = torch.randn(4, 64, device=device)
        with torch.inference_mode():
            if precision == "int8":
                out = Int8WeightOnlyLinear(linear)(x)
            else:
                dtype = FLOAT_DTYPES[precision]
                out = linear.to(dtype)(x.to(dtype))
                out = nn.functional.layer_norm(out, (64,))
                out = nn.functional.scaled_dot_product_attention(
                    out[None, None], out[None, None], out[None, None]
                )
        return bool(torch.isfinite(out.float()).all().item())
    except (RuntimeError, NotImplementedError, TypeError):
        return False


@functools.cache
def _supported(device_type: str, device_index: int | None) -> tuple[Precision, ...]:
    device = (
        torch.device(device_type)
        if device_index is None
        else torch.device(device_type, device_index)
    )
    return tuple(p for p in ALL_PRECISIONS if _probe(p, device))


def supported_precisions(device: torch.device) -> tuple[Precision, ...]:
    return _supported(device.type, device.index)


def cache_dtype(precision: Precision) -> torch.dtype:
    """int8 is weight-only: activations and the KV cache stay fp32."""
    return FLOAT_DTYPES.get(precision, torch.float32)


def prepare_model(base: CausalLM, precision: Precision, device: torch.device) -> CausalLM:
    """A copy of ``base`` (fp32, CPU) converted to ``precision`` on ``device``."""
    if precision not in supported_precisions(device):
        raise UnsupportedPrecisionError(
            f"precision {precision!r} is not supported on {device.type}; "
            f"supported: {', '.join(supported_precisions(device))}"
        )
    model = copy.deepcopy(base)
    if precision == "int8":
        _quantize_linears(model)
        model = model.to(device)
    else:
        model = model.to(device=device, dtype=FLOAT_DTYPES[precision])
    model.eval()
    return model
