"""The live configuration of the engine and the legal values of each knob on this device.

The search space is computed from the device (core count, supported precisions) so the
control plane's adapter can build its tuning space from ``GET /admin/search-space`` instead
of guessing; every PUT is validated against the same object.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import replace
from typing import Any
from typing import cast

import torch

from engine.precision import ALL_PRECISIONS
from engine.precision import Precision
from engine.precision import supported_precisions

MAX_BATCH_LIMIT = 64
MAX_QUEUE_DELAY_MS_LIMIT = 1000.0
BATCH_CHOICES = (1, 2, 4, 8, 16, 32, 64)
QUEUE_DELAY_CHOICES = (0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0)
CONFIG_KEYS = ("max_batch_size", "streams", "precision", "max_queue_delay_ms")


class ConfigError(ValueError):
    """A configuration value is illegal; ``param`` names the offending field."""

    def __init__(self, message: str, param: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass(frozen=True)
class EngineConfig:
    max_batch_size: int = 8
    streams: int = 1
    precision: Precision = "fp32"
    max_queue_delay_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class SearchSpace:
    """Legal values per knob. Streams may exceed the core count on purpose: oversubscribing
    is a real (bad) region of the landscape the tuner must be able to see."""

    max_streams: int
    precisions: tuple[Precision, ...]
    max_batch_size: int = MAX_BATCH_LIMIT
    max_queue_delay_ms: float = MAX_QUEUE_DELAY_MS_LIMIT

    @classmethod
    def for_device(cls, device: torch.device) -> SearchSpace:
        streams = 8 if device.type == "cuda" else max(2, 2 * available_cores())
        return cls(max_streams=streams, precisions=supported_precisions(device))

    def validate(self, config: EngineConfig) -> None:
        if not 1 <= config.max_batch_size <= self.max_batch_size:
            raise ConfigError(
                f"max_batch_size must be between 1 and {self.max_batch_size}, "
                f"got {config.max_batch_size}",
                "max_batch_size",
            )
        if not 1 <= config.streams <= self.max_streams:
            raise ConfigError(
                f"streams must be between 1 and {self.max_streams} on this device, "
                f"got {config.streams}",
                "streams",
            )
        if config.precision not in self.precisions:
            known = "known" if config.precision in ALL_PRECISIONS else "unknown"
            raise ConfigError(
                f"precision {config.precision!r} ({known}) is not supported on this device; "
                f"choose one of {', '.join(self.precisions)}",
                "precision",
            )
        delay = config.max_queue_delay_ms
        if not (math.isfinite(delay) and 0.0 <= delay <= self.max_queue_delay_ms):
            raise ConfigError(
                f"max_queue_delay_ms must be between 0 and {self.max_queue_delay_ms:g}, "
                f"got {delay}",
                "max_queue_delay_ms",
            )

    def to_json(self) -> dict[str, Any]:
        batch_choices = [b for b in BATCH_CHOICES if b <= self.max_batch_size]
        return {
            "knobs": [
                {
                    "name": "max_batch_size",
                    "type": "int",
                    "min": 1,
                    "max": self.max_batch_size,
                    "choices": batch_choices,
                },
                {
                    "name": "streams",
                    "type": "int",
                    "min": 1,
                    "max": self.max_streams,
                    "choices": list(range(1, self.max_streams + 1)),
                },
                {"name": "precision", "type": "choice", "choices": list(self.precisions)},
                {
                    "name": "max_queue_delay_ms",
                    "type": "float",
                    "min": 0.0,
                    "max": self.max_queue_delay_ms,
                    "choices": list(QUEUE_DELAY_CHOICES),
                },
            ]
        }


def _int_field(patch: Mapping[str, object], key: str) -> int:
    value = patch[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key} must be an integer, got {value!r}", key)
    return value


def merge_config(current: EngineConfig, patch: Mapping[str, object]) -> EngineConfig:
    """Applies a partial update: absent keys keep their current value, unknown keys fail."""
    unknown = sorted(set(patch) - set(CONFIG_KEYS))
    if unknown:
        raise ConfigError(
            f"unknown configuration key(s): {', '.join(unknown)}; "
            f"allowed: {', '.join(CONFIG_KEYS)}",
            unknown[0],
        )
    updated = current
    if "max_batch_size" in patch:
        updated = replace(updated, max_batch_size=_int_field(patch, "max_batch_size"))
    if "streams" in patch:
        updated = replace(updated, streams=_int_field(patch, "streams"))
    if "precision" in patch:
        value = patch["precision"]
        if not isinstance(value, str):
            raise ConfigError(f"precision must be a string, got {value!r}", "precision")
        updated = replace(updated, precision=cast(Precision, value))
    if "max_queue_delay_ms" in patch:
        value = patch["max_queue_delay_ms"]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(
                f"max_queue_delay_ms must be a number, got {value!r}", "max_queue_delay_ms"
            )
        updated = replace(updated, max_queue_delay_ms=float(value))
    return updated
