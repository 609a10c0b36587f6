"""Faults the engine can be told to have, through its admin API, so the control plane's
detectors are tested on a real misbehaving process rather than on a simulation.

``leak_bytes_per_request``: every accepted generation request keeps that many bytes alive
for the life of the process (written, so they are resident, not just reserved), the way a
cache that is never evicted leaks. Capped at ``MAX_LEAKED_BYTES`` in all, so a forgotten
switch cannot take the machine down; ``DELETE /admin/faults`` switches it off and frees what
was kept (a restart does too).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

MAX_LEAK_PER_REQUEST = 16 * 1024 * 1024
MAX_LEAKED_BYTES = 2 * 1024 * 1024 * 1024


class FaultError(ValueError):
    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True, slots=True)
class FaultState:
    leak_bytes_per_request: int
    leaked_bytes: int
    leaked_requests: int

    def as_dict(self) -> dict[str, int]:
        return {
            "leak_bytes_per_request": self.leak_bytes_per_request,
            "leaked_bytes": self.leaked_bytes,
            "leaked_requests": self.leaked_requests,
            "max_leaked_bytes": MAX_LEAKED_BYTES,
        }


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._per_request = 0
        self._kept: list[bytes] = []
        self._bytes = 0

    def set(self, patch: object) -> FaultState:
        """Apply ``{"leak_bytes_per_request": N}``; anything else is refused whole."""
        if not isinstance(patch, dict):
            raise FaultError("the body must be a JSON object", "body")
        unknown = set(patch) - {"leak_bytes_per_request"}
        if unknown:
            raise FaultError(f"unknown fault {sorted(unknown)[0]!r}", sorted(unknown)[0])
        value = patch.get("leak_bytes_per_request", self._per_request)
        if isinstance(value, bool) or not isinstance(value, int):
            raise FaultError("leak_bytes_per_request must be an integer", "leak_bytes_per_request")
        if not 0 <= value <= MAX_LEAK_PER_REQUEST:
            raise FaultError(
                f"leak_bytes_per_request must be between 0 and {MAX_LEAK_PER_REQUEST}",
                "leak_bytes_per_request",
            )
        with self._lock:
            self._per_request = value
        return self.state()

    def clear(self) -> FaultState:
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
            return FaultState(self._per_request, self._bytes, len(self._kept))
