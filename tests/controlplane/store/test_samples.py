from __future__ import annotations

import pytest
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.domain import Sample
from controlplane.store import samples as store
from controlplane.store.models import SampleRollupRow
from controlplane.store.models import SampleRow


def _s(ts: float, value: float, metric: str = "m", **labels: str) -> Sample:
    return Sample(ts, "e", metric, tuple(sorted(labels.items())), value)


def test_bulk_insert_and_fetch(session: Session) -> None:
    batch = [_s(1000.0 + i, float(i), model="a" if i % 2 else "b") for i in range(5000)]
    with session.begin():
        assert store.insert_samples(session, batch) == 5000
    with session.begin():
        count = session.execute(select(func.count()).select_from(SampleRow)).scalar()
        series = store.fetch_series(session, source="e", metric="m", start=0, end=1e9)
        only_a = store.fetch_series(
            session, source="e", metric="m", start=0, end=1e9, labels={"model": "a"}
        )
    assert count == 5000
    assert [s.labels for s in series] == [{"model": "a"}, {"model": "b"}]
    assert len(only_a) == 1 and len(only_a[0].points) == 2500
    assert only_a[0].points[0] == (1001.0, 1.0)


def test_insert_is_part_of_the_callers_transaction(session: Session) -> None:
    with pytest.raises(RuntimeError), session.begin():
        store.insert_samples(session, [_s(1.0, 1.0)])
        raise RuntimeError("roll back")
    with session.begin():
        assert session.execute(select(func.count()).select_from(SampleRow)).scalar() == 0


def test_downsample_last_and_avg() -> None:
    pts = [(1.0, 1.0), (2.0, 2.0), (11.0, 5.0), (12.0, 7.0)]
    assert store.downsample(pts, start=0, end=20, step=10) == [(10.0, 2.0), (20.0, 7.0)]
    assert store.downsample(pts, start=0, end=20, step=10, agg="avg") == [(10.0, 1.5), (20.0, 6.0)]


def test_rollup_prune_and_query_from_rollups(session: Session) -> None:
    base = 1_700_000_040.0  # a minute boundary
    with session.begin():
        store.insert_samples(session, [_s(base + i * 10, float(i)) for i in range(12)])
        store.insert_samples(session, [_s(base + 600, 99.0)])
    with session.begin():
        result = store.rollup_and_prune(
            session, now=base + 660, raw_retention_s=300, rollup_retention_s=86400
        )
    assert result.raw_deleted == 12 and result.rolled_up_minutes == 2
    with session.begin():
        rows = (
            session.execute(select(SampleRollupRow).order_by(SampleRollupRow.ts)).scalars().all()
        )
        assert [(r.ts, r.last, r.min, r.max, r.count) for r in rows] == [
            (base, 5.0, 0.0, 5.0, 6),
            (base + 60, 11.0, 6.0, 11.0, 6),
        ]
        (series,) = store.fetch_series(session, source="e", metric="m", start=base, end=base + 700)
    assert series.points == [(base + 50, 5.0), (base + 110, 11.0), (base + 600, 99.0)]
    # A late sample for a rolled-up minute merges into it; running again is idempotent.
    with session.begin():
        store.insert_samples(session, [_s(base + 59, 50.0)])
        store.rollup_and_prune(
            session, now=base + 660, raw_retention_s=300, rollup_retention_s=86400
        )
    with session.begin():
        first = session.execute(
            select(SampleRollupRow.last, SampleRollupRow.max, SampleRollupRow.count).where(
                SampleRollupRow.ts == base
            )
        ).one()
        assert tuple(first) == (50.0, 50.0, 7)
        store.rollup_and_prune(
            session, now=base + 10**6, raw_retention_s=300, rollup_retention_s=3600
        )
        assert session.execute(select(func.count()).select_from(SampleRollupRow)).scalar() == 0


def test_ingest_batch_keys_are_idempotent(session: Session) -> None:
    with session.begin():
        assert store.record_ingest_batch(session, key="k1", samples=1, actor="a")
    with session.begin():
        assert not store.record_ingest_batch(session, key="k1", samples=1, actor="a")
