"""The quality probe over HTTP: record an engine's reference answers (operator), read what
was recorded and check the engine against it (viewer). The probe calls the engine outside
any database transaction."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi import Request

from controlplane.api.deps import Operator
from controlplane.api.deps import SessionDep
from controlplane.api.deps import Viewer
from controlplane.api.deps import actor
from controlplane.api.params import EngineRef
from controlplane.guard import quality as probe
from controlplane.schemas.quality import QualityCheck
from controlplane.schemas.quality import QualityRecord
from controlplane.store import engines
from controlplane.store import quality as quality_store

router = APIRouter(prefix="/api/v1/engines/{engine}/quality", tags=["Quality"])


@router.put("/reference")
def record_reference(
    engine: EngineRef, body: QualityRecord, request: Request, session: SessionDep, who: Operator
) -> dict[str, Any]:
    """Send the probe set to the engine and store its greedy answers as the reference."""
    with session.begin():
        row = engines.get_engine(session, engine)
        probe.require_settled(session, row)
        engine_id, target = row.id, engines.engine_target(row)
    prompts = body.probe_set() or probe.default_probe_set()
    adapter = request.app.state.adapter_factory(target)
    try:
        config = probe.served_config(adapter, body.config)
        answers = probe.record(adapter, prompts, top_k=body.top_k)
    finally:
        adapter.close()
    with session.begin():
        saved = quality_store.save_reference(
            session,
            engine_id=engine_id,
            config=config,
            top_k=body.top_k,
            answers=answers,
            actor=actor(who),
        )
        return saved.summary()


@router.get("/reference")
def get_reference(engine: EngineRef, session: SessionDep, who: Viewer) -> dict[str, Any]:
    with session.begin():
        row = engines.get_engine(session, engine)
        return quality_store.require_reference(session, row).summary()


@router.post("/check")
def check(
    engine: EngineRef, body: QualityCheck, request: Request, session: SessionDep, who: Viewer
) -> dict[str, Any]:
    """Probe the engine now and compare with its reference: the measures, the worst
    prompts, and the verdict of its quality spec if it has one."""
    with session.begin():
        row = engines.get_engine(session, engine)
        reference = quality_store.require_reference(session, row)
        spec = quality_store.engine_quality(session, row.id)
        target = engines.engine_target(row)
    adapter = request.app.state.adapter_factory(target)
    try:
        config = probe.served_config(adapter, body.config)
        result = probe.check(adapter, reference.answers, top_k=reference.top_k, config=config)
    finally:
        adapter.close()
    out: dict[str, Any] = {"reference": reference.summary(), **result.to_json(worst=body.worst)}
    if spec is not None:
        out["spec"] = spec.spec()
        out["passed"] = spec.passes(result)
    return out
