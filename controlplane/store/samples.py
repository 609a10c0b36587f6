"""Time-series samples: bulk insert, range queries with downsampling, rollups and retention.

A point is stored as (series id, ts, value); the series' source, metric and labels live once
in ``series``. Ids are resolved through a per-process cache of *committed* ids (a series is
never deleted, so a committed id never changes meaning); ids created by an open transaction
join the cache only when it commits, so a rollback cannot leave a dangling id behind.

Inserts take the fastest path each backend offers inside the caller's transaction: SQLite
gets one ``executemany`` of a prepared INSERT (tuples straight to the driver, no per-row
dicts or ORM objects); PostgreSQL gets binary ``COPY ... FROM STDIN``, psycopg's bulk path,
several times faster than any multi-row INSERT. The caller owns the transaction.

Raw samples expire after a retention window; :func:`rollup_and_prune` (run by the scheduler)
first folds every minute it is about to delete into ``sample_rollups`` (last, min, max,
sum, count per series and minute), so :func:`query_series` can keep answering from rollups
where raw rows are gone.
"""

from __future__ import annotations

import json
import math
import struct
import threading
import weakref
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from functools import lru_cache
from typing import Any
from typing import Literal
from typing import cast

from sqlalchemy import CursorResult
from sqlalchemy import Engine
from sqlalchemy import Table
from sqlalchemy import case
from sqlalchemy import delete
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controlplane.domain import Sample
from controlplane.domain import canonical_labels
from controlplane.domain.samples import Labels
from controlplane.store.models import IngestBatchRow
from controlplane.store.models import SampleRollupRow
from controlplane.store.models import SampleRow
from controlplane.store.models import SeriesRow

Aggregation = Literal["last", "avg", "min", "max"]
SeriesKey = tuple[str, str, Labels]  # source, metric, labels
_SAMPLES = cast(Table, SampleRow.__table__)
_SERIES = cast(Table, SeriesRow.__table__)
_ROLLUPS = cast(Table, SampleRollupRow.__table__)
# PostgreSQL's binary COPY format: a signature, flags and header-extension length; per row
# the field count, then each field's byte length and big-endian value; -1 ends the stream.
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_ROW = struct.Struct(">hiiidid")  # 3 fields: int4 series_id, float8 ts, float8 value
_COPY_TRAILER = struct.pack(">h", -1)
_COPY_SQL = "COPY samples (series_id, ts, value) FROM STDIN (FORMAT BINARY)"
_INSERT_SQL = "INSERT INTO samples (series_id, ts, value) VALUES (?, ?, ?)"
# A label explosion must not grow the cache without bound: past this it starts over.
_CACHE_LIMIT = 1_000_000
_PENDING = "controlplane.store.samples.new_series"

_committed: weakref.WeakKeyDictionary[Engine, dict[SeriesKey, int]] = weakref.WeakKeyDictionary()
_committed_lock = threading.Lock()


def _cache_for(engine: Engine) -> dict[SeriesKey, int]:
    with _committed_lock:
        cache = _committed.get(engine)
        if cache is None:
            cache = _committed[engine] = {}
        return cache


@event.listens_for(Session, "after_commit")
def _promote_new_series(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    for engine, ids in pending.items():
        cache = _cache_for(engine)
        if len(cache) + len(ids) > _CACHE_LIMIT:
            cache.clear()
        cache.update(ids)


def forget_series(engine: Engine) -> None:
    """Drop the cached series ids of ``engine``. Production never deletes a series, so only a
    caller that empties the ``series`` table (a test fixture) needs this: a cached id would
    otherwise name a row that is gone."""
    with _committed_lock:
        _committed.pop(engine, None)


@event.listens_for(Session, "after_soft_rollback")
def _forget_new_series(session: Session, _previous: object) -> None:
    # Any rollback, a SAVEPOINT's included, may have removed series this transaction made:
    # forget them all (they are looked up again; nothing but a cache entry is lost).
    session.info.pop(_PENDING, None)


def series_ids(session: Session, keys: Iterable[SeriesKey]) -> dict[SeriesKey, int]:
    """The id of every series in ``keys``, creating the missing ones in the caller's
    transaction."""
    conn = session.connection()
    engine = conn.engine
    cache = _cache_for(engine)
    pending: dict[SeriesKey, int] = session.info.setdefault(_PENDING, {}).setdefault(engine, {})
    found: dict[SeriesKey, int] = {}
    missing: set[SeriesKey] = set()
    for key in keys:
        sid = cache.get(key)
        if sid is None:
            sid = pending.get(key)
        if sid is None:
            missing.add(key)
        else:
            found[key] = sid
    if not missing:
        return found
    by_text = {(k[0], k[1], canonical_labels(k[2])): k for k in missing}
    ins: Any = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(_SERIES)
    conn.execute(
        ins.on_conflict_do_nothing(),
        [{"source": s, "metric": m, "labels": lab} for s, m, lab in by_text],
    )
    sources = {k[0] for k in by_text}
    metrics = {k[1] for k in by_text}
    for sid, source, metric, labels in conn.execute(
        select(_SERIES.c.id, _SERIES.c.source, _SERIES.c.metric, _SERIES.c.labels).where(
            _SERIES.c.source.in_(sources), _SERIES.c.metric.in_(metrics)
        )
    ):
        wanted = by_text.get((source, metric, labels))
        if wanted is not None:
            found[wanted] = pending[wanted] = int(sid)
    return found


def _rows(session: Session, samples: Sequence[Sample]) -> list[tuple[int, float, float]]:
    # The steady state is one dict lookup per sample in the committed cache; only samples of
    # series this process has not seen committed go through series_ids().
    get = _cache_for(session.connection().engine).get
    rows: list[tuple[int | None, float, float]] = [
        (get((source, metric, labels)), ts, value) for ts, source, metric, labels, value in samples
    ]
    unknown = [i for i, row in enumerate(rows) if row[0] is None]
    if unknown:
        ids = series_ids(session, {samples[i][1:4] for i in unknown})
        for i in unknown:
            rows[i] = (ids[samples[i][1:4]], rows[i][1], rows[i][2])
    return cast(list[tuple[int, float, float]], rows)


def _copy_payload(rows: Sequence[tuple[int, float, float]]) -> bytes:
    pack = _COPY_ROW.pack
    return b"".join(
        [
            _COPY_HEADER,
            *[pack(3, 4, sid, 8, ts, 8, value) for sid, ts, value in rows],
            _COPY_TRAILER,
        ]
    )


def insert_samples(session: Session, samples: Sequence[Sample]) -> int:
    """Insert samples in bulk inside the caller's transaction; returns how many."""
    if not samples:
        return 0
    rows = _rows(session, samples)
    conn = session.connection()
    dbapi = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        # Binary COPY, the whole batch packed by one struct per row and written at once:
        # no text formatting of floats on either side, no per-row call into psycopg.
        with dbapi.cursor() as cur:  # type: ignore[union-attr]
            with cur.copy(_COPY_SQL) as copy:
                copy.write(_copy_payload(rows))
    else:
        cur = dbapi.cursor()  # type: ignore[union-attr]
        try:
            cur.executemany(_INSERT_SQL, rows)
        finally:
            cur.close()
    return len(rows)


def insert_samples_baseline(session: Session, samples: Sequence[Sample]) -> int:
    """The plain way: a core INSERT executed with a list of dicts (benchmark baseline).
    Series ids are resolved as :func:`insert_samples` does, so only the write path differs."""
    if not samples:
        return 0
    rows = _rows(session, samples)
    session.execute(
        insert(_SAMPLES), [{"series_id": sid, "ts": ts, "value": v} for sid, ts, v in rows]
    )
    return len(samples)


def record_ingest_batch(session: Session, *, key: str, samples: int, actor: str) -> bool:
    """Remember an ingest batch key; ``False`` when the key was already stored.

    Runs in a SAVEPOINT so a duplicate key leaves the caller's transaction usable.
    """
    if session.get(IngestBatchRow, key) is not None:
        return False
    try:
        with session.begin_nested():
            session.add(IngestBatchRow(key=key, samples=samples, actor=actor))
            session.flush()
    except IntegrityError:
        return False
    return True


# --- queries -------------------------------------------------------------------------


@dataclass
class SeriesData:
    """One series (a label set) of one metric: points sorted by time."""

    labels: dict[str, str]
    points: list[tuple[float, float]] = field(default_factory=list)


@lru_cache(maxsize=65536)
def _labels(text: str) -> tuple[tuple[str, str], ...]:
    loaded = json.loads(text)
    return tuple(sorted((str(k), str(v)) for k, v in loaded.items()))


def _matches(labels: tuple[tuple[str, str], ...], want: Mapping[str, str]) -> bool:
    have = dict(labels)
    return all(have.get(k) == v for k, v in want.items())


def fetch_series(
    session: Session,
    *,
    source: str,
    metric: str,
    start: float,
    end: float,
    labels: Mapping[str, str] | None = None,
) -> list[SeriesData]:
    """Raw points of every series of ``metric`` from ``source`` in ``[start, end]``.

    Where raw rows have expired, the minute rollups stand in (their ``last`` value at the
    time of the minute's last sample), so long ranges keep answering after retention.
    """
    want = dict(labels or {})
    keys: dict[int, Labels] = {}
    for sid, text in session.execute(
        select(SeriesRow.id, SeriesRow.labels).where(
            SeriesRow.metric == metric, SeriesRow.source == source
        )
    ):
        key = _labels(text)
        if not want or _matches(key, want):
            keys[int(sid)] = key
    if not keys:
        return []
    raw = session.execute(
        select(SampleRow.series_id, SampleRow.ts, SampleRow.value)
        .where(SampleRow.series_id.in_(keys))
        .where(SampleRow.ts >= start, SampleRow.ts <= end)
        .order_by(SampleRow.ts)
    ).all()
    earliest_raw = raw[0][1] if raw else math.inf
    if earliest_raw > start:
        rolled = session.execute(
            select(SampleRollupRow.series_id, SampleRollupRow.last_ts, SampleRollupRow.last)
            .where(SampleRollupRow.series_id.in_(keys))
            .where(SampleRollupRow.last_ts >= start, SampleRollupRow.last_ts < earliest_raw)
            .where(SampleRollupRow.last_ts <= end)
            .order_by(SampleRollupRow.last_ts)
        ).all()
        raw = [*rolled, *raw]
    found: dict[Labels, list[tuple[float, float]]] = {}
    for sid, ts, value in raw:
        found.setdefault(keys[sid], []).append((ts, value))
    return [SeriesData(dict(k), points) for k, points in sorted(found.items())]


def sources_labelled(session: Session, *, metric: str, key: str, value: str) -> list[str]:
    """Sources with a series of ``metric`` carrying ``key=value``: the host that reports an
    engine's process (``host_engine_process_resident_memory_bytes{engine=...}``)."""
    found = set()
    for source, text in session.execute(
        select(SeriesRow.source, SeriesRow.labels).where(SeriesRow.metric == metric)
    ):
        if dict(_labels(text)).get(key) == value:
            found.add(str(source))
    return sorted(found)


def fetch_many(
    session: Session, *, sources: Sequence[str], metric: str, start: float, end: float
) -> dict[str, list[SeriesData]]:
    """Raw points of ``metric`` for many sources in two queries (a fleet page's sparklines):
    ``{source: [series, ...]}``. Unlike :func:`fetch_series` no rollups stand in: the
    callers ask for the last minutes only."""
    keys: dict[int, tuple[str, Labels]] = {}
    for sid, source, text in session.execute(
        select(SeriesRow.id, SeriesRow.source, SeriesRow.labels).where(
            SeriesRow.metric == metric, SeriesRow.source.in_(list(sources))
        )
    ):
        keys[int(sid)] = (str(source), _labels(text))
    found: dict[tuple[str, Labels], list[tuple[float, float]]] = {}
    if keys:
        for sid, ts, value in session.execute(
            select(SampleRow.series_id, SampleRow.ts, SampleRow.value)
            .where(SampleRow.series_id.in_(keys))
            .where(SampleRow.ts >= start, SampleRow.ts <= end)
            .order_by(SampleRow.ts)
        ):
            found.setdefault(keys[sid], []).append((ts, value))
    out: dict[str, list[SeriesData]] = {}
    for (source, labels), points in sorted(found.items()):
        out.setdefault(source, []).append(SeriesData(dict(labels), points))
    return out


def downsample(
    points: Sequence[tuple[float, float]],
    *,
    start: float,
    end: float,
    step: float,
    agg: Aggregation = "last",
) -> list[tuple[float, float]]:
    """One point per step, stamped at the step's end: the last (or avg/min/max) value of
    the raw points in ``(t - step, t]``; steps without points are left out."""
    if step <= 0:
        raise ValueError("step must be positive")
    buckets: dict[int, list[float]] = {}
    for ts, value in points:
        if ts < start or ts > end:
            continue
        index = max(0, math.ceil((ts - start) / step))
        buckets.setdefault(index, []).append(value)
    out: list[tuple[float, float]] = []
    for index in sorted(buckets):
        values = buckets[index]
        if agg == "last":
            v = values[-1]
        elif agg == "avg":
            v = sum(values) / len(values)
        elif agg == "min":
            v = min(values)
        else:
            v = max(values)
        out.append((start + index * step, v))
    return out


# --- rollups and retention -----------------------------------------------------------


@dataclass(frozen=True)
class RetentionResult:
    rolled_up_minutes: int
    raw_deleted: int
    rollups_deleted: int


def _upsert(session: Session, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    dialect = session.connection().dialect.name
    ins: Any = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_ROLLUPS)
    ex = ins.excluded
    t = _ROLLUPS.c
    newer = ex.last_ts >= t.last_ts
    stmt = ins.on_conflict_do_update(
        index_elements=["series_id", "ts"],
        set_={
            "last": case((newer, ex.last), else_=t.last),
            "last_ts": func.max(t.last_ts, ex.last_ts)
            if dialect == "sqlite"
            else func.greatest(t.last_ts, ex.last_ts),
            "min": func.min(t.min, ex.min) if dialect == "sqlite" else func.least(t.min, ex.min),
            "max": func.max(t.max, ex.max)
            if dialect == "sqlite"
            else func.greatest(t.max, ex.max),
            "sum": t.sum + ex.sum,
            "count": t.count + ex.count,
        },
    )
    session.execute(stmt, rows)


def rollup_and_prune(
    session: Session,
    *,
    now: float,
    raw_retention_s: float,
    rollup_retention_s: float,
    chunk_s: float = 3600.0,
) -> RetentionResult:
    """Fold raw samples older than ``raw_retention_s`` into one-minute rollups, delete them,
    and delete rollups older than ``rollup_retention_s``. Idempotent: a minute rolled up
    twice (late samples) is merged, not duplicated. Runs in the caller's transaction.

    The walk goes through time in ``chunk_s`` slices (the samples' index is time-first), which
    bounds what one step holds in memory.
    """
    cutoff = math.floor((now - raw_retention_s) / 60.0) * 60.0
    oldest = session.execute(select(func.min(SampleRow.ts)).where(SampleRow.ts < cutoff)).scalar()
    minutes: set[float] = set()
    raw_deleted = 0
    lo = cutoff if oldest is None else math.floor(oldest / 60.0) * 60.0
    while lo < cutoff:
        hi = min(cutoff, lo + chunk_s)
        window = (SampleRow.ts >= lo, SampleRow.ts < hi)
        agg: dict[tuple[int, float], list[float]] = {}
        for sid, ts, value in session.execute(
            select(SampleRow.series_id, SampleRow.ts, SampleRow.value)
            .where(*window)
            .order_by(SampleRow.ts)
        ):
            key = (sid, math.floor(ts / 60.0) * 60.0)
            a = agg.get(key)
            if a is None:
                agg[key] = [ts, value, value, value, value, 1]
            else:
                a[0], a[1] = ts, value
                a[2] = min(a[2], value)
                a[3] = max(a[3], value)
                a[4] += value
                a[5] += 1
        _upsert(
            session,
            [
                {
                    "series_id": k[0],
                    "ts": k[1],
                    "last_ts": a[0],
                    "last": a[1],
                    "min": a[2],
                    "max": a[3],
                    "sum": a[4],
                    "count": int(a[5]),
                }
                for k, a in agg.items()
            ],
        )
        minutes.update(k[1] for k in agg)
        raw_deleted += _rowcount(session.execute(delete(SampleRow).where(*window)))
        lo = hi
    rollups_deleted = _rowcount(
        session.execute(
            delete(SampleRollupRow).where(SampleRollupRow.ts < now - rollup_retention_s)
        )
    )
    return RetentionResult(len(minutes), raw_deleted, rollups_deleted)


def _rowcount(result: object) -> int:
    return int(cast(CursorResult[Any], result).rowcount)
