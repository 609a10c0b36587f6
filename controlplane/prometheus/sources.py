"""What the store knows, as the inputs of discovery and of the SLO rules."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.domain import SLO
from controlplane.domain import Series
from controlplane.prometheus.slo_rules import SloTarget
from controlplane.prometheus.targets import EngineEntry
from controlplane.store import engines
from controlplane.store import slos
from controlplane.store.models import EngineRow
from controlplane.store.models import SeriesRow


def engine_entries(session: Session) -> list[EngineEntry]:
    return [
        EngineEntry(
            name=row.name,
            kind=row.kind,
            metrics_url=row.metrics_url or f"{row.url.rstrip('/')}/metrics",
            labels=dict(row.labels or {}),
        )
        for row in engines.list_engines(session)
    ]


def known_buckets(session: Session, engine: str, series: Series) -> tuple[float, ...] | None:
    """Bucket bounds (seconds) of the engine's histogram as the collectors stored them;
    ``None`` when none were stored (the collectors off, or the engine never scraped)."""
    rows = session.scalars(
        select(SeriesRow.labels).where(
            SeriesRow.source == engine, SeriesRow.metric == f"{series.value}_bucket"
        )
    )
    bounds: set[float] = set()
    for text in rows:
        try:
            le = json.loads(text).get("le")
            bounds.add(float(le))
        except (ValueError, TypeError, AttributeError):
            continue
    return tuple(sorted(bounds)) if bounds else None


def slo_target(session: Session, row: EngineRow, slo: SLO) -> SloTarget:
    buckets = None if slo.kind == "error_rate" else known_buckets(session, row.name, slo.series)
    return SloTarget(engine=row.name, kind=row.kind, slo=slo, buckets=buckets)


def slo_targets(session: Session) -> list[SloTarget]:
    return [
        slo_target(session, row, slo)
        for row in engines.list_engines(session)
        for slo in slos.engine_slos(session, row.id)
    ]
