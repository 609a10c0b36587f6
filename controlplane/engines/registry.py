"""Which adapter serves which engine kind: a literal table of the built-ins plus the
``controlplane.engines`` entry-point group for third-party kinds, checked when loaded."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points

from controlplane.domain import EngineTarget
from controlplane.domain import ValidationError
from controlplane.engines.base import EngineAdapter
from controlplane.engines.process.adapter import process_adapter
from controlplane.engines.reference import ReferenceAdapter
from controlplane.engines.triton import TritonAdapter

AdapterFactory = Callable[[EngineTarget], EngineAdapter]

BUILTIN: dict[str, AdapterFactory] = {
    "reference": ReferenceAdapter,
    "process": process_adapter,
    "triton": TritonAdapter,
}
ENTRY_POINT_GROUP = "controlplane.engines"


def available() -> dict[str, AdapterFactory]:
    found = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        factory = ep.load()
        if not callable(factory):
            raise TypeError(f"entry point {ep.name!r} in {ENTRY_POINT_GROUP} is not callable")
        found.setdefault(ep.name, factory)
    return found


def adapter_for(target: EngineTarget) -> EngineAdapter:
    """The adapter for ``target``; callers close it when done.

    Raises:
        ValidationError: no adapter controls engines of this kind (yet).
    """
    factories = available()
    factory = factories.get(target.kind)
    if factory is None:
        kinds = ", ".join(sorted(factories))
        raise ValidationError(
            f"engine {target.name!r}: no adapter controls kind {target.kind!r} "
            f"(controllable kinds: {kinds})",
            field="kind",
        )
    adapter = factory(target)
    if not isinstance(adapter, EngineAdapter):
        raise TypeError(f"adapter for {target.kind!r} does not implement EngineAdapter")
    return adapter
