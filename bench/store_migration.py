"""How long revision 0005 (series ids) takes on a store that holds many samples: rows of the
previous layout are written at revision 0004, then ``upgrade`` to 0005 is timed, on SQLite
and on PostgreSQL.

    python bench/store_migration.py [--rows 1000000] [--series 5000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from collectors_ingest import postgres_url
from sqlalchemy import text

from controlplane.settings import Settings
from controlplane.store import schema
from controlplane.store.database import make_engine


def run(url: str, rows: int, series: int) -> tuple[float, float]:
    engine = make_engine(Settings(database_url=url, data_dir=Path(tempfile.mkdtemp())))
    schema.upgrade(engine, "0004")
    insert = text(
        "INSERT INTO samples (ts, source, metric, labels, value) VALUES (:ts, :s, :m, :l, :v)"
    )
    chunk = 50_000
    with engine.begin() as conn:
        for first in range(0, rows, chunk):
            conn.execute(
                insert,
                [
                    {
                        "ts": 1_700_000_000.0 + i // series,
                        "s": f"engine-{i % series // 100}",
                        "m": f"request_latency_seconds_bucket{i % 100 // 20}",
                        "l": f'{{"le":"{i % 20}","model_name":"m"}}',
                        "v": float(i),
                    }
                    for i in range(first, min(rows, first + chunk))
                ],
            )
    started = time.perf_counter()
    schema.upgrade(engine, "0005")
    took = time.perf_counter() - started
    with engine.connect() as conn:
        moved = conn.execute(text("SELECT COUNT(*) FROM samples")).scalar()
    engine.dispose()
    assert moved == rows, (moved, rows)
    return took, rows / took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--series", type=int, default=5000)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    sqlite_url = f"sqlite:///{Path(tempfile.mkdtemp()) / 'migrate.db'}"
    results = {"sqlite": run(sqlite_url, args.rows, args.series)}
    pg_url, drop = postgres_url(args.postgres)
    try:
        results["postgresql"] = run(pg_url, args.rows, args.series)
    finally:
        drop()
    print(f"{args.rows:,} samples of {args.series:,} series, upgrade 0004 -> 0005")
    for backend, (took, rate) in results.items():
        print(f"{backend:<12}{took:>8.1f} s{rate:>14,.0f} rows/s")


if __name__ == "__main__":
    main()
