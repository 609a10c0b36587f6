"""``POST /api/v1/ingest``: batches of samples pushed by collector agents.

Idempotent by ``Idempotency-Key``: the key and the samples are stored in one transaction,
so a retried batch is either fully stored once or refused as a duplicate. Every row is
validated before anything is written; a bad row is a 422 naming its index. Each stored batch
writes one audit event (``ingest.batch``) with its counts, in the same transaction.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Header

from controlplane.api.deps import Operator
from controlplane.api.deps import SessionDep
from controlplane.api.deps import actor
from controlplane.domain import Sample
from controlplane.domain import labels_of
from controlplane.schemas.samples import IngestBatch
from controlplane.schemas.samples import IngestResult
from controlplane.store import audit
from controlplane.store import samples as sample_store

router = APIRouter(prefix="/api/v1/ingest", tags=["Ingest"])
# Source names kept in the audit event; an agent pushes a handful, a flood stays bounded.
_AUDITED_SOURCES = 20


@router.post("", response_model=IngestResult)
def ingest(
    batch: IngestBatch,
    session: SessionDep,
    who: Operator,
    idempotency_key: Annotated[
        str,
        Header(
            min_length=8,
            max_length=128,
            pattern=r"^[A-Za-z0-9._:-]+$",
            description="Chosen once per batch by the sender and reused on retries.",
        ),
    ],
) -> IngestResult:
    samples = [
        Sample(s.ts, s.source, s.metric, labels_of(s.labels), s.value) for s in batch.samples
    ]
    with session.begin():
        fresh = sample_store.record_ingest_batch(
            session, key=idempotency_key, samples=len(samples), actor=actor(who)
        )
        if not fresh:
            return IngestResult(stored=0, duplicate=True)
        stored = sample_store.insert_samples(session, samples)
        sources = sorted({s.source for s in samples})
        audit.record(
            session,
            actor=actor(who),
            action="ingest.batch",
            target_type="ingest",
            target_id=idempotency_key,
            detail={
                "samples": len(samples),
                "stored": stored,
                "sources": sources[:_AUDITED_SOURCES],
                "source_count": len(sources),
            },
        )
    return IngestResult(stored=stored, duplicate=False)
