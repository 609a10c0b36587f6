"""Per-engine SLOs. Setting an SLO with the name of an existing one replaces it: an engine
has one p99 objective, not a history of them (the audit log keeps the history)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.domain import SLO
from controlplane.domain import NotFoundError
from controlplane.store import audit
from controlplane.store.models import SloRow


def set_slo(session: Session, *, engine_id: int, slo: SLO, actor: str) -> SloRow:
    row = session.scalars(
        select(SloRow).where(SloRow.engine_id == engine_id, SloRow.name == slo.name)
    ).one_or_none()
    if row is None:
        row = SloRow(engine_id=engine_id, name=slo.name)
        session.add(row)
    row.kind, row.quantile, row.threshold, row.window_s = (
        slo.kind,
        slo.quantile,
        slo.threshold,
        slo.window_s,
    )
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="slo.set",
        target_type="engine",
        target_id=engine_id,
        detail={"slo": slo.spec(), "window_s": slo.window_s},
    )
    return row


def list_slos(session: Session, engine_id: int) -> list[SloRow]:
    query = select(SloRow).where(SloRow.engine_id == engine_id).order_by(SloRow.name)
    return list(session.scalars(query))


LATENCY_KINDS = ("latency", "ttft", "error_rate")


def engine_slos(session: Session, engine_id: int) -> list[SLO]:
    """The SLOs judged on request metrics; the quality spec is read by
    :func:`controlplane.store.quality.engine_quality`."""
    return [
        SLO(kind=r.kind, threshold=r.threshold, quantile=r.quantile, window_s=r.window_s)  # type: ignore[arg-type]
        for r in list_slos(session, engine_id)
        if r.kind in LATENCY_KINDS
    ]


def remove_slo(session: Session, *, engine_id: int, name: str, actor: str) -> None:
    row = session.scalars(
        select(SloRow).where(SloRow.engine_id == engine_id, SloRow.name == name)
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"engine {engine_id} has no SLO named {name!r}")
    session.delete(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="slo.remove",
        target_type="engine",
        target_id=engine_id,
        detail={"name": name},
    )
