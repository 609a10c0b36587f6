"""Ingest throughput: samples/s into SQLite and PostgreSQL in 5,000-sample batches, the
store's bulk path against a plain ``executemany`` of dicts, measured side by side (batches
rotate between the paths so machine noise hits them alike).

A third path, ``wide rows``, is the layout the store used before series ids: every row
carries source, metric and label JSON, indexed on (metric, source, ts), written by the same
bulk method (tuples / text-free COPY). It runs in the same database for comparison.

    python bench/collectors_ingest.py [--batches 40] [--postgres URL]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from controlplane.domain import Sample
from controlplane.domain import canonical_labels
from controlplane.settings import Settings
from controlplane.store import schema
from controlplane.store.database import make_engine
from controlplane.store.database import make_session_factory
from controlplane.store.samples import insert_samples
from controlplane.store.samples import insert_samples_baseline
from controlplane.store.samples import rollup_and_prune

BATCH = 5000


def batch(i: int) -> list[Sample]:
    """A realistic scrape mix: 50 engines x 100 series (histogram buckets and counters)."""
    ts = 1_700_000_000.0 + i
    out = []
    for n in range(BATCH):
        engine, series = divmod(n, 100)
        labels = (("le", str(series % 20)), ("model_name", "m"))
        out.append(
            Sample(
                ts,
                f"engine-{engine}",
                f"request_latency_seconds_bucket{series // 20}",
                labels,
                float(n),
            )
        )
    return out


_WIDE_DDL = (
    "CREATE TABLE bench_wide_samples (id {id} PRIMARY KEY, ts FLOAT NOT NULL, "
    "source VARCHAR(200) NOT NULL, metric VARCHAR(200) NOT NULL, labels TEXT NOT NULL, "
    "value FLOAT NOT NULL)",
    "CREATE INDEX ix_bench_wide ON bench_wide_samples (metric, source, ts)",
)


def insert_wide(session: Session, samples: Sequence[Sample]) -> int:
    rows = [(s.ts, s.source, s.metric, canonical_labels(s.labels), s.value) for s in samples]
    conn = session.connection()
    dbapi: Any = conn.connection.driver_connection
    columns = "ts, source, metric, labels, value"
    if conn.dialect.name == "postgresql":
        with dbapi.cursor() as cur:
            sql = f"COPY bench_wide_samples ({columns}) FROM STDIN (FORMAT BINARY)"
            with cur.copy(sql) as copy:
                copy.set_types(("float8", "varchar", "varchar", "text", "float8"))
                for row in rows:
                    copy.write_row(row)
    else:
        cur = dbapi.cursor()
        cur.executemany(f"INSERT INTO bench_wide_samples ({columns}) VALUES (?,?,?,?,?)", rows)
        cur.close()
    return len(rows)


def run(url: str, batches: int) -> dict[str, float]:
    engine = make_engine(Settings(database_url=url, data_dir=Path(tempfile.mkdtemp())))
    schema.upgrade(engine)
    with engine.begin() as conn:
        id_type = "BIGSERIAL" if engine.dialect.name == "postgresql" else "INTEGER"
        for ddl in _WIDE_DDL:
            conn.execute(text(ddl.format(id=id_type)))
    sessions = make_session_factory(engine)
    paths: dict[str, Callable[[Session, Sequence[Sample]], int]] = {
        "bulk": insert_samples,
        "executemany": insert_samples_baseline,
        "wide": insert_wide,
    }
    rates: dict[str, list[float]] = {name: [] for name in paths}
    data = [batch(i) for i in range(batches)]
    for i, samples in enumerate(data):
        names = list(paths)
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            with sessions() as session, session.begin():
                started = time.perf_counter()
                paths[name](session, samples)
            rates[name].append(len(samples) / (time.perf_counter() - started))
    result = {name: statistics.median(values) for name, values in rates.items()}
    # Retention of everything stored above (bulk and executemany rows): rollups per minute
    # written, raw rows deleted, in one transaction.
    with sessions() as session, session.begin():
        started = time.perf_counter()
        pruned = rollup_and_prune(
            session, now=data[-1][0].ts + 3600, raw_retention_s=60, rollup_retention_s=86400
        )
        result["retention"] = pruned.raw_deleted / (time.perf_counter() - started)
    engine.dispose()
    return result


def postgres_url(admin_url: str) -> tuple[str, Callable[[], None]]:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"cp_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(admin_url).set(database=name).render_as_string(hide_password=False), drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    sqlite_url = f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    results = {"sqlite": run(sqlite_url, args.batches)}
    pg_url, drop = postgres_url(args.postgres)
    try:
        results["postgresql"] = run(pg_url, args.batches)
    finally:
        drop()
    print(
        f"{'backend':<12}{'bulk samples/s':>16}{'executemany/s':>16}{'ratio':>8}"
        f"{'wide rows/s':>14}{'vs wide':>9}{'retention rows/s':>18}"
    )
    for backend, r in results.items():
        ratio = r["bulk"] / r["executemany"]
        print(
            f"{backend:<12}{r['bulk']:>16,.0f}{r['executemany']:>16,.0f}{ratio:>8.2f}"
            f"{r['wide']:>14,.0f}{r['bulk'] / r['wide']:>9.2f}{r['retention']:>18,.0f}"
        )


if __name__ == "__main__":
    main()
