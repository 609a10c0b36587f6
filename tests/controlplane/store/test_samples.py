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


def test_series_made_by_a_rolled_back_transaction_are_not_remembered(session: Session) -> None:
    # SQLite hands a rolled-back id to the next new series: a cached id from the rolled-back
    # transaction would file the next points under the wrong series.
    with pytest.raises(RuntimeError), session.begin():
        store.insert_samples(session, [_s(1.0, 1.0, metric="a")])
        raise RuntimeError("roll back")
    with session.begin():
        store.insert_samples(session, [_s(2.0, 2.0, metric="b")])
    with session.begin():
        with pytest.raises(RuntimeError), session.begin_nested():
            store.insert_samples(session, [_s(3.0, 3.0, metric="c")])
            raise RuntimeError("roll back the savepoint")
        store.insert_samples(session, [_s(4.0, 4.0, metric="d")])
    with session.begin():
        store.insert_samples(session, [_s(5.0, 5.0, metric=m) for m in "abcd"])
    with session.begin():
        points = {
            m: [
                p
                for s in store.fetch_series(session, source="e", metric=m, start=0, end=9)
                for p in s.points
            ]
            for m in "abcd"
        }
    assert points == {
        "a": [(5.0, 5.0)],
        "b": [(2.0, 2.0), (5.0, 5.0)],
        "c": [(5.0, 5.0)],
        "d": [(4.0, 4.0), (5.0, 5.0)],
    }


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


def test_retention_folds_every_series_and_keeps_new_samples(session: Session) -> None:
    base = 60_000.0
    old = [_s(base + t, t, metric=f"m{i}") for i in range(5) for t in (0.0, 30.0)]
    fresh = [_s(base + 900 + i, 1.0, metric=f"m{i}") for i in range(5)]
    with session.begin():
        store.insert_samples(session, old + fresh)
    with session.begin():
        result = store.rollup_and_prune(
            session,
            now=base + 960,
            raw_retention_s=300,
            rollup_retention_s=86400,
            chunk_s=20,
        )
    assert (result.raw_deleted, result.rolled_up_minutes) == (10, 1)
    with session.begin():
        assert session.execute(select(func.count()).select_from(SampleRow)).scalar() == 5
        sums = session.execute(select(SampleRollupRow.sum, SampleRollupRow.count)).all()
        for i in range(5):
            (series,) = store.fetch_series(
                session, source="e", metric=f"m{i}", start=base, end=base + 960
            )
            assert series.points == [(base + 30, 30.0), (base + 900 + i, 1.0)]
    assert sorted(map(tuple, sums)) == [(30.0, 2)] * 5


def test_ingest_batch_keys_are_idempotent(session: Session) -> None:
    with session.begin():
        assert store.record_ingest_batch(session, key="k1", samples=1, actor="a")
    with session.begin():
        assert not store.record_ingest_batch(session, key="k1", samples=1, actor="a")
