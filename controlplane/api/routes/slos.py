from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Path
from fastapi import Response

from controlplane.api.deps import Operator
from controlplane.api.deps import SessionDep
from controlplane.api.deps import Viewer
from controlplane.api.deps import actor
from controlplane.api.params import EngineRef
from controlplane.domain import parse_slo
from controlplane.domain.quality import is_quality_spec
from controlplane.guard import quality as quality_probe
from controlplane.prometheus import check_slo
from controlplane.schemas.slos import SloCreate
from controlplane.schemas.slos import SloRead
from controlplane.store import engines
from controlplane.store import slos

router = APIRouter(prefix="/api/v1/engines/{engine}/slos", tags=["SLOs"])


@router.get("", response_model=list[SloRead])
def list_slos(engine: EngineRef, session: SessionDep, who: Viewer) -> list[SloRead]:
    with session.begin():
        row = engines.get_engine(session, engine)
        return [SloRead.from_row(r) for r in slos.list_slos(session, row.id)]


@router.put("", response_model=SloRead)
def set_slo(engine: EngineRef, body: SloCreate, session: SessionDep, who: Operator) -> SloRead:
    """Create or replace the SLO of that name (`p99`, `ttft_p95`, `error_rate`), or the
    engine's quality spec (`quality>=0.98`: it needs recorded reference answers)."""
    if is_quality_spec(body.spec):
        with session.begin():
            row = engines.get_engine(session, engine)
            saved = quality_probe.set_spec(session, engine=row, text=body.spec, actor=actor(who))
            return SloRead.from_row(saved)
    slo = parse_slo(body.spec, window_s=body.window_s)
    with session.begin():
        row = engines.get_engine(session, engine)
        check_slo(session, row, slo)
        return SloRead.from_row(slos.set_slo(session, engine_id=row.id, slo=slo, actor=actor(who)))


@router.delete("/{name}", status_code=204)
def remove_slo(
    engine: EngineRef,
    name: Annotated[str, Path(max_length=64)],
    session: SessionDep,
    who: Operator,
) -> Response:
    with session.begin():
        row = engines.get_engine(session, engine)
        slos.remove_slo(session, engine_id=row.id, name=name, actor=actor(who))
    return Response(status_code=204)
