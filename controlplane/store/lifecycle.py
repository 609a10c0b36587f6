"""The one way a stateful row changes state: a compare-and-set UPDATE, checked against its
lifecycle's transition table, recorded in the audit log with who moved it.

Why compare-and-set and not read-modify-write: two movers (a runner and a sweep, two
replicas, an operator and a timer) may read the same state at once. The UPDATE names the
state the mover read, so exactly one of them changes the row and the other learns it lost
(:class:`ConflictError`) instead of overwriting a decision it never saw.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any
from typing import Protocol
from typing import TypeVar

from sqlalchemy import update
from sqlalchemy.orm import Session

from controlplane.domain import ConflictError
from controlplane.domain import IllegalTransitionError
from controlplane.domain import Lifecycle
from controlplane.store import audit
from controlplane.store.base import utcnow


class StatefulRow(Protocol):
    id: Any
    state: Any


R = TypeVar("R", bound=StatefulRow)
S = TypeVar("S", bound=StrEnum)


def transition(
    session: Session,
    row: R,
    to: S,
    *,
    lifecycle: Lifecycle[S],
    actor: str,
    expect: Iterable[S] | None = None,
    values: dict[str, Any] | None = None,
    action: str | None = None,
    detail: dict[str, Any] | None = None,
    event: str | None = None,
) -> R:
    """Move ``row`` to ``to`` if it is still in one of ``expect`` (default: the state read).

    ``values`` are further columns written in the same UPDATE (results, timestamps). Rows with
    an ``updated`` column get it stamped; a move into a terminal state stamps ``finished_at``
    when the row has one and ``values`` does not set it. The audit event is
    ``<action or lifecycle name>.<to>`` with ``from`` in its detail; ``event`` names it
    whole where a lifecycle's audit name predates that rule (``chaos.abort``).

    Raises:
        IllegalTransitionError: the lifecycle does not allow the move from an expected state.
        ConflictError: someone else moved the row first.
    """
    current = lifecycle.parse(row.state)
    sources = tuple(expect) if expect is not None else (current,)
    for source in sources:
        if not lifecycle.can_move(source, to):
            raise IllegalTransitionError(
                f"{lifecycle.name} {row.id} cannot move from {source.value} to {to.value}",
                lifecycle=lifecycle.name,
                current=source.value,
                to=to.value,
            )
    model = type(row)
    columns = model.__table__.columns  # type: ignore[attr-defined]
    written: dict[str, Any] = {"state": to.value, **(values or {})}
    now = utcnow()
    if "updated" in columns:
        written.setdefault("updated", now)
    if to in lifecycle.terminal and "finished_at" in columns:
        written.setdefault("finished_at", now)
    result = session.execute(
        update(model)
        .where(model.id == row.id, model.state.in_([s.value for s in sources]))
        .values(**written)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 1) != 1:
        raise ConflictError(f"{lifecycle.name} {row.id} was moved by someone else")
    session.refresh(row)
    moved_from = sources[0].value if len(sources) == 1 else [s.value for s in sources]
    audit.record(
        session,
        actor=actor,
        action=event or f"{action or lifecycle.name}.{to.value}",
        target_type=lifecycle.name,
        target_id=row.id,
        detail={"from": moved_from, **(detail or {})},
    )
    return row
