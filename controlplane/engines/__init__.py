"""Layer 1: engine adapters, all behind :class:`EngineAdapter`."""

from controlplane.engines.base import EngineAdapter
from controlplane.engines.registry import adapter_for

__all__ = ["EngineAdapter", "adapter_for"]
