"""The supervisors running in this process, by engine name: an engine's processes have one
owner, and every adapter of that engine must reach the same one."""

from __future__ import annotations

import threading

from controlplane.domain import ValidationError
from controlplane.engines.process.supervisor import Supervisor

_lock = threading.Lock()
_running: dict[str, Supervisor] = {}


def register(supervisor: Supervisor) -> None:
    with _lock:
        if supervisor.spec.name in _running:
            raise ValidationError(
                f"engine {supervisor.spec.name!r} already has a supervisor here", field="name"
            )
        _running[supervisor.spec.name] = supervisor


def unregister(name: str) -> None:
    with _lock:
        _running.pop(name, None)


def is_running(name: str) -> bool:
    with _lock:
        return name in _running


def supervisor_for(name: str) -> Supervisor:
    with _lock:
        supervisor = _running.get(name)
    if supervisor is None:
        raise ValidationError(
            f"engine {name!r} is kind=process but no supervisor runs it in this process, and "
            "it has no admin token to reach the one on its node (cplane engine supervise)",
            field="admin_token",
        )
    return supervisor
