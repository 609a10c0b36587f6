"""Faults the engine can be told to have, through its admin API, so the control plane's
detectors are tested on a real misbehaving process rather than on a simulation.

``leak_bytes_per_request``: every accepted generation request keeps that many bytes alive
for the life of the process (written, so they are resident, not just reserved), the way a
cache that is never evicted leaks. Capped at ``MAX_LEAKED_BYTES`` in all, so a forgotten
switch cannot take the machine down; ``DELETE /admin/faults`` switches it off and frees what
was kept (a restart does too).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field

MAX_LEAK_PER_REQUEST = 16 * 1024 * 1024
MAX_LEAKED_BYTES = 2 * 1024 * 1024 * 1024
MAX_WEIGHT_NOISE = 1.0
PRECISIONS = ("fp32", "bf16", "fp16", "int8")
KNOWN = ("leak_bytes_per_request", "weight_noise", "weight_noise_precisions", "weight_noise_seed")


@dataclass(frozen=True, slots=True)
class WeightNoise:
    """Relative noise on the served weights; ``relative == 0`` means clean weights."""

    relative: float = 0.0
    precisions: tuple[str, ...] = PRECISIONS
    seed: int = 0

    def applies_to(self, precision: str) -> bool:
        return self.relative > 0 and precision in self.precisions


# Told the new noise; returns once the engine serves with it (raises on failure).
NoiseHook = Callable[[WeightNoise], None]


class FaultError(ValueError):
    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True, slots=True)
class FaultState:
    leak_bytes_per_request: int
    leaked_bytes: int
    leaked_requests: int
    weight_noise: WeightNoise = field(default_factory=WeightNoise)

    def as_dict(self) -> dict[str, object]:
        return {
            "leak_bytes_per_request": self.leak_bytes_per_request,
            "leaked_bytes": self.leaked_bytes,
            "leaked_requests": self.leaked_requests,
            "max_leaked_bytes": MAX_LEAKED_BYTES,
            "weight_noise": self.weight_noise.relative,
            "weight_noise_precisions": list(self.weight_noise.precisions),
            "weight_noise_seed": self.weight_noise.seed,
        }


def _weight_noise(patch: dict[str, object], current: WeightNoise) -> WeightNoise:
    relative = patch.get("weight_noise", current.relative)
    if isinstance(relative, bool) or not isinstance(relative, int | float):
        raise FaultError("weight_noise must be a number", "weight_noise")
    if not (math.isfinite(relative) and 0.0 <= relative <= MAX_WEIGHT_NOISE):
        raise FaultError(
            f"weight_noise must be between 0 and {MAX_WEIGHT_NOISE:g}", "weight_noise"
        )
    precisions = patch.get("weight_noise_precisions", list(current.precisions))
    if (
        not isinstance(precisions, list)
        or not precisions
        or any(p not in PRECISIONS for p in precisions)
    ):
        raise FaultError(
            f"weight_noise_precisions must be a non-empty list of {', '.join(PRECISIONS)}",
            "weight_noise_precisions",
        )
    seed = patch.get("weight_noise_seed", current.seed)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise FaultError("weight_noise_seed must be an integer in [0, 2^31)", "weight_noise_seed")
    return WeightNoise(float(relative), tuple(str(p) for p in precisions), seed)


class Faults:
    def __init__(self, on_weight_noise: NoiseHook | None = None) -> None:
        self._lock = threading.Lock()
        self._per_request = 0
        self._kept: list[bytes] = []
        self._bytes = 0
        self._noise = WeightNoise()
        self._on_noise = on_weight_noise

    def set(self, patch: object) -> FaultState:
        """Apply a patch of the known faults; anything else is refused whole. Changing the
        weight noise returns once the engine serves with it (a model rebuild)."""
        if not isinstance(patch, dict):
            raise FaultError("the body must be a JSON object", "body")
        unknown = set(patch) - set(KNOWN)
        if unknown:
            raise FaultError(f"unknown fault {sorted(unknown)[0]!r}", sorted(unknown)[0])
        noise = _weight_noise(patch, self._noise)
        if noise != self._noise and self._on_noise is None:
            raise FaultError("this engine cannot perturb its weights", "weight_noise")
        value = patch.get("leak_bytes_per_request", self._per_request)
        if isinstance(value, bool) or not isinstance(value, int):
            raise FaultError("leak_bytes_per_request must be an integer", "leak_bytes_per_request")
        if not 0 <= value <= MAX_LEAK_PER_REQUEST:
            raise FaultError(
                f"leak_bytes_per_request must be between 0 and {MAX_LEAK_PER_REQUEST}",
                "leak_bytes_per_request",
            )
        if noise != self._noise and self._on_noise is not None:
            self._on_noise(noise)
            self._noise = noise
        with self._lock:
            self._per_request = value
        return self.state()

    def clear(self) -> FaultState:
        if self._noise != WeightNoise() and self._on_noise is not None:
            self._on_noise(WeightNoise())
            self._noise = WeightNoise()
        with self._lock:
            self._per_request = 0
            self._kept = []
            self._bytes = 0
        return self.state()

    def on_request(self) -> None:
        """Called once per accepted generation request."""
        size = self._per_request
        if size <= 0:
            return
        with self._lock:
            if self._bytes + size > MAX_LEAKED_BYTES:
                return
            self._kept.append(b"\x01" * size)
            self._bytes += size

    def state(self) -> FaultState:
        with self._lock:
            return FaultState(self._per_request, self._bytes, len(self._kept), self._noise)
