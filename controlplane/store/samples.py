"""Time-series samples: bulk insert, range queries with downsampling, rollups and retention.

Inserts take the fastest path each backend offers inside the caller's transaction: SQLite
gets one ``executemany`` of a core INSERT compiled once (tuples straight to the driver, no
per-row dicts or ORM objects); PostgreSQL gets ``COPY ... FROM STDIN``, psycopg's bulk
path, several times faster than any multi-row INSERT. The caller owns the transaction.

Raw samples expire after a retention window; :func:`rollup_and_prune` (run by the scheduler)
first folds every minute it is about to delete into ``sample_rollups`` (last, min, max,
sum, count per series and minute), so :func:`query_series` can keep answering from rollups
where raw rows are gone.
"""

from __future__ import annotations

import json
import math
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
from sqlalchemy import Table
from sqlalchemy import case
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from controlplane.domain import Sample
from controlplane.domain import canonical_labels
from controlplane.store.models import IngestBatchRow
from controlplane.store.models import SampleRollupRow
from controlplane.store.models import SampleRow

Aggregation = Literal["last", "avg", "min", "max"]
_COLUMNS = ("ts", "source", "metric", "labels", "value")
_SAMPLES = cast(Table, SampleRow.__table__)
_ROLLUPS = cast(Table, SampleRollupRow.__table__)


_PG_TYPES = ("float8", "varchar", "varchar", "text", "float8")


def _rows(samples: Iterable[Sample]) -> list[tuple[float, str, str, str, float]]:
    return [(s.ts, s.source, s.metric, canonical_labels(s.labels), s.value) for s in samples]


def insert_samples(session: Session, samples: Sequence[Sample]) -> int:
    """Insert samples in bulk inside the caller's transaction; returns how many."""
    if not samples:
        return 0
    conn = session.connection()
    dbapi = conn.connection.driver_connection
    rows = _rows(samples)
    if conn.dialect.name == "postgresql":
        # Binary COPY: no text formatting of floats on either side (about 20 % faster
        # than text COPY here).
        columns = ", ".join(_COLUMNS)
        with dbapi.cursor() as cur:  # type: ignore[union-attr]
            with cur.copy(f"COPY samples ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(_PG_TYPES)
                for row in rows:
                    copy.write_row(row)
    else:
        sql = _insert_sql(conn.dialect.name)
        cur = dbapi.cursor()  # type: ignore[union-attr]
        try:
            cur.executemany(sql, rows)
        finally:
            cur.close()
    return len(rows)


@lru_cache(maxsize=4)
def _insert_sql(dialect_name: str) -> str:
    dialect = sqlite.dialect(paramstyle="qmark") if dialect_name == "sqlite" else None
    stmt = insert(_SAMPLES).values({c: None for c in _COLUMNS})
    compiled = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    return str(compiled)


def insert_samples_baseline(session: Session, samples: Sequence[Sample]) -> int:
    """The plain way: a core INSERT executed with a list of dicts (benchmark baseline)."""
    if not samples:
        return 0
    session.execute(
        insert(_SAMPLES), [dict(zip(_COLUMNS, r, strict=True)) for r in _rows(samples)]
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
    found: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = {}
    raw = session.execute(
        select(SampleRow.ts, SampleRow.labels, SampleRow.value)
        .where(SampleRow.metric == metric, SampleRow.source == source)
        .where(SampleRow.ts >= start, SampleRow.ts <= end)
        .order_by(SampleRow.ts)
    ).all()
    earliest_raw = raw[0][0] if raw else math.inf
    if earliest_raw > start:
        rolled = session.execute(
            select(SampleRollupRow.last_ts, SampleRollupRow.labels, SampleRollupRow.last)
            .where(SampleRollupRow.metric == metric, SampleRollupRow.source == source)
            .where(SampleRollupRow.last_ts >= start, SampleRollupRow.last_ts < earliest_raw)
            .where(SampleRollupRow.last_ts <= end)
            .order_by(SampleRollupRow.last_ts)
        ).all()
        raw = [*rolled, *raw]
    for ts, text, value in raw:
        key = _labels(text)
        if want and not _matches(key, want):
            continue
        found.setdefault(key, []).append((ts, value))
    return [SeriesData(dict(k), points) for k, points in sorted(found.items())]


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
        index_elements=["source", "metric", "labels", "ts"],
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
    """
    cutoff = math.floor((now - raw_retention_s) / 60.0) * 60.0
    oldest = session.execute(select(func.min(SampleRow.ts)).where(SampleRow.ts < cutoff)).scalar()
    minutes = 0
    raw_deleted = 0
    if oldest is not None:
        lo = math.floor(oldest / 60.0) * 60.0
        while lo < cutoff:
            hi = min(cutoff, lo + chunk_s)
            agg: dict[tuple[str, str, str, float], list[float]] = {}
            for ts, source, metric, labels, value in session.execute(
                select(
                    SampleRow.ts,
                    SampleRow.source,
                    SampleRow.metric,
                    SampleRow.labels,
                    SampleRow.value,
                )
                .where(SampleRow.ts >= lo, SampleRow.ts < hi)
                .order_by(SampleRow.ts)
            ):
                key = (source, metric, labels, math.floor(ts / 60.0) * 60.0)
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
                        "source": k[0],
                        "metric": k[1],
                        "labels": k[2],
                        "ts": k[3],
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
            minutes += len({k[3] for k in agg})
            raw_deleted += _rowcount(
                session.execute(delete(SampleRow).where(SampleRow.ts >= lo, SampleRow.ts < hi))
            )
            lo = hi
    rollups_deleted = _rowcount(
        session.execute(
            delete(SampleRollupRow).where(SampleRollupRow.ts < now - rollup_retention_s)
        )
    )
    return RetentionResult(minutes, raw_deleted, rollups_deleted)


def _rowcount(result: object) -> int:
    return int(cast(CursorResult[Any], result).rowcount)
