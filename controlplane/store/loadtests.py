"""Load tests: one row per sweep, one per step, moved through the load-test lifecycle
(:mod:`controlplane.domain.loadtest`) by compare-and-set like every stateful row.

A running load test's lease is its ``updated`` column, stamped by the process running it;
a sweep marks one with a stale stamp ``interrupted``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from controlplane.domain import ConflictError
from controlplane.domain import LoadTestState
from controlplane.domain import NotFoundError
from controlplane.domain.loadtest import LOAD_TEST_ACTION
from controlplane.domain.loadtest import LOAD_TEST_LIFECYCLE
from controlplane.store import audit
from controlplane.store.base import utcnow
from controlplane.store.lifecycle import transition
from controlplane.store.models import LoadTestRow
from controlplane.store.models import LoadTestStepRow

ACTIVE_STATES = tuple(s.value for s in LoadTestState if s in LOAD_TEST_LIFECYCLE.active)
STEP_FIELDS = (
    "offered", "throughput_rps", "output_tokens_per_s", "p50_ms", "p90_ms", "p99_ms",
    "ttft_p50_ms", "ttft_p99_ms", "tpot_ms", "requests", "errors", "rejected", "error_rate",
    "meets_slo", "stable", "windows", "throughput_noise", "p99_noise", "duration_s",
)  # fmt: skip


def create(
    session: Session, *, engine_id: int, kind: str, spec: dict[str, Any], actor: str
) -> LoadTestRow:
    """A new load test in ``pending``.

    Raises:
        ConflictError: the engine has another load test in progress.
    """
    busy = active(session, engine_id)
    if busy is not None:
        raise ConflictError(f"engine {engine_id} is under load test {busy.id} ({busy.state})")
    row = LoadTestRow(
        engine_id=engine_id, state=LoadTestState.pending.value, kind=kind, spec=spec, actor=actor
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="loadtest.start",
        target_type="load_test",
        target_id=row.id,
        detail={"engine_id": engine_id, "kind": kind, "steps": spec.get("steps")},
    )
    return row


def get(session: Session, load_test_id: int) -> LoadTestRow:
    row = session.get(LoadTestRow, load_test_id)
    if row is None:
        raise NotFoundError(f"load test {load_test_id} not found")
    return row


def list_(
    session: Session, *, engine_id: int | None = None, limit: int = 100
) -> list[LoadTestRow]:
    query = select(LoadTestRow).order_by(LoadTestRow.id.desc()).limit(limit)
    if engine_id is not None:
        query = query.where(LoadTestRow.engine_id == engine_id)
    return list(session.scalars(query))


def active(session: Session, engine_id: int) -> LoadTestRow | None:
    return session.scalars(
        select(LoadTestRow).where(
            LoadTestRow.engine_id == engine_id, LoadTestRow.state.in_(ACTIVE_STATES)
        )
    ).first()


def steps(session: Session, load_test_id: int) -> list[LoadTestStepRow]:
    return list(
        session.scalars(
            select(LoadTestStepRow)
            .where(LoadTestStepRow.load_test_id == load_test_id)
            .order_by(LoadTestStepRow.index)
        )
    )


def add_step(session: Session, load_test_id: int, *, index: int, **figures: Any) -> None:
    unknown = set(figures) - set(STEP_FIELDS)
    if unknown:
        raise ValueError(f"unknown step fields {sorted(unknown)}")
    session.add(LoadTestStepRow(load_test_id=load_test_id, index=index, **figures))
    session.flush()


def move(
    session: Session,
    row: LoadTestRow,
    to: LoadTestState,
    *,
    actor: str,
    expect: tuple[LoadTestState, ...] | None = None,
    result: dict[str, Any] | None = None,
) -> LoadTestRow:
    """Move ``row`` to ``to`` if it is still in one of ``expect`` (default: its state now).

    Raises:
        IllegalTransitionError: the lifecycle does not allow the move.
        ConflictError: someone else moved it first.
    """
    values: dict[str, Any] = {}
    if result is not None:
        values["result"] = {**(row.result or {}), **result}
    if to is LoadTestState.running:
        values["started_at"] = utcnow()
    return transition(
        session,
        row,
        to,
        lifecycle=LOAD_TEST_LIFECYCLE,
        actor=actor,
        expect=expect,
        values=values,
        action=LOAD_TEST_ACTION,
    )


def stamp(session: Session, load_test_id: int) -> str:
    """Renew the lease; returns the state, so the runner sees a stop asked elsewhere."""
    row = get(session, load_test_id)
    session.execute(
        update(LoadTestRow)
        .where(LoadTestRow.id == load_test_id)
        .values(updated=utcnow())
        .execution_options(synchronize_session=False)
    )
    return row.state


def request_stop(session: Session, load_test_id: int, *, actor: str) -> None:
    """Ask a load test to stop: recorded in its result; the runner stops after this window."""
    row = get(session, load_test_id)
    if row.state not in ACTIVE_STATES:
        raise ConflictError(f"load test {load_test_id} is {row.state}: nothing to stop")
    if row.state == LoadTestState.pending:
        move(session, row, LoadTestState.stopped, actor=actor)
        return
    session.execute(
        update(LoadTestRow)
        .where(LoadTestRow.id == load_test_id)
        .values(result={**(row.result or {}), "stop_requested_by": actor})
        .execution_options(synchronize_session=False)
    )
    audit.record(
        session,
        actor=actor,
        action="loadtest.stop",
        target_type="load_test",
        target_id=load_test_id,
        detail={},
    )


def stop_requested(session: Session, load_test_id: int) -> bool:
    return bool((get(session, load_test_id).result or {}).get("stop_requested_by"))


def stale(session: Session, *, cutoff: datetime) -> list[LoadTestRow]:
    return list(
        session.scalars(
            select(LoadTestRow).where(
                LoadTestRow.state == LoadTestState.running.value, LoadTestRow.updated < cutoff
            )
        )
    )
