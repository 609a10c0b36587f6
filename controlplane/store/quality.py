"""Per-engine quality references and quality specs.

The reference answers are one row per engine (recording again replaces them). The quality
spec (``quality>=0.98``) is a row of ``slos`` whose kind is ``quality``; an engine has at
most one, and the latency SLO readers never see it (:func:`slos.engine_slos` reads latency
kinds only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.domain import ValidationError
from controlplane.domain.quality import QualitySpec
from controlplane.domain.quality import ReferenceAnswer
from controlplane.domain.quality import parse_quality
from controlplane.store import audit
from controlplane.store.models import EngineRow
from controlplane.store.models import QualityReferenceRow
from controlplane.store.models import SloRow

QUALITY_KIND = "quality"


@dataclass(frozen=True)
class QualityReference:
    engine_id: int
    config: dict[str, Any]
    top_k: int
    answers: tuple[ReferenceAnswer, ...]
    recorded_by: str
    recorded_at: datetime

    def summary(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "prompts": len(self.answers),
            "top_k": self.top_k,
            "recorded_by": self.recorded_by,
            "recorded_at": self.recorded_at.isoformat(),
        }


def save_reference(
    session: Session,
    *,
    engine_id: int,
    config: dict[str, Any],
    top_k: int,
    answers: Sequence[ReferenceAnswer],
    actor: str,
) -> QualityReference:
    row = session.get(QualityReferenceRow, engine_id)
    if row is None:
        row = QualityReferenceRow(engine_id=engine_id)
        session.add(row)
    row.config, row.top_k, row.recorded_by = dict(config), top_k, actor
    row.answers = [a.to_json() for a in answers]
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="quality.record",
        target_type="engine",
        target_id=engine_id,
        detail={"config": dict(config), "prompts": len(answers), "top_k": top_k},
    )
    return _reference(row)


def get_reference(session: Session, engine_id: int) -> QualityReference | None:
    row = session.get(QualityReferenceRow, engine_id)
    return None if row is None else _reference(row)


def require_reference(session: Session, engine: EngineRow) -> QualityReference:
    """Raises:
    ValidationError: nothing recorded yet (the message says how to record)."""
    found = get_reference(session, engine.id)
    if found is None:
        raise ValidationError(
            f"engine {engine.name!r} has no recorded reference answers: record them with "
            f"`cplane quality record {engine.name}`",
            field="reference",
        )
    return found


def set_quality(session: Session, *, engine_id: int, spec: QualitySpec, actor: str) -> SloRow:
    """The engine's quality spec; replaces any earlier one (whatever its measure)."""
    session.execute(
        delete(SloRow).where(SloRow.engine_id == engine_id, SloRow.kind == QUALITY_KIND)
    )
    row = SloRow(
        engine_id=engine_id,
        name=spec.name,
        kind=QUALITY_KIND,
        quantile=None,
        threshold=spec.threshold,
        window_s=0.0,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="slo.set",
        target_type="engine",
        target_id=engine_id,
        detail={"slo": spec.spec()},
    )
    return row


def engine_quality(session: Session, engine_id: int) -> QualitySpec | None:
    row = session.scalars(
        select(SloRow).where(SloRow.engine_id == engine_id, SloRow.kind == QUALITY_KIND)
    ).first()
    return None if row is None else spec_of(row)


def spec_of(row: SloRow) -> QualitySpec:
    op = "<=" if row.name == "quality_kl" else ">="
    return parse_quality(f"{row.name}{op}{row.threshold!r}")


def _reference(row: QualityReferenceRow) -> QualityReference:
    return QualityReference(
        engine_id=row.engine_id,
        config=dict(row.config),
        top_k=row.top_k,
        answers=tuple(ReferenceAnswer.from_json(a) for a in row.answers),
        recorded_by=row.recorded_by,
        recorded_at=row.updated,
    )
