"""Guard events: what on-call routing (a higher layer) subscribes to. The guard only emits;
it never knows who listens, so a notifier failing cannot break a rollback."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

log = logging.getLogger("controlplane.guard")


@dataclass(frozen=True)
class GuardEvent:
    kind: str  # rollout.committed | rollout.rolled_back | rollout.failed | rollout.reconciled
    engine: str
    rollout_id: int
    summary: str
    detail: dict[str, Any] = field(default_factory=dict)


Listener = Callable[[GuardEvent], None]


class EventBus:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def emit(self, event: GuardEvent) -> None:
        level = logging.INFO if event.kind == "rollout.committed" else logging.WARNING
        log.log(
            level,
            "%s engine=%s rollout=%d: %s",
            event.kind,
            event.engine,
            event.rollout_id,
            event.summary,
        )
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - a listener must never break the guard
                log.exception("guard event listener failed on %s", event.kind)
