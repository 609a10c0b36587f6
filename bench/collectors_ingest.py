"""Ingest throughput: samples/s into SQLite and PostgreSQL in 5,000-sample batches, the
store's bulk path against a plain ``executemany`` of dicts, measured side by side (batches
alternate between the two so machine noise hits both alike).

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

from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from controlplane.domain import Sample
from controlplane.settings import Settings
from controlplane.store import schema
from controlplane.store.database import make_engine
from controlplane.store.database import make_session_factory
from controlplane.store.samples import insert_samples
from controlplane.store.samples import insert_samples_baseline

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


def run(url: str, batches: int) -> dict[str, float]:
    engine = make_engine(Settings(database_url=url, data_dir=Path(tempfile.mkdtemp())))
    schema.upgrade(engine)
    sessions = make_session_factory(engine)
    paths: dict[str, Callable[[Session, Sequence[Sample]], int]] = {
        "bulk": insert_samples,
        "executemany": insert_samples_baseline,
    }
    rates: dict[str, list[float]] = {name: [] for name in paths}
    data = [batch(i) for i in range(batches)]
    for i, samples in enumerate(data):
        order = list(paths) if i % 2 == 0 else list(reversed(paths))
        for name in order:
            with sessions() as session, session.begin():
                started = time.perf_counter()
                paths[name](session, samples)
            rates[name].append(len(samples) / (time.perf_counter() - started))
    engine.dispose()
    return {name: statistics.median(values) for name, values in rates.items()}


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
    print(f"{'backend':<12}{'bulk samples/s':>16}{'executemany/s':>16}{'ratio':>8}")
    for backend, r in results.items():
        ratio = r["bulk"] / r["executemany"]
        print(f"{backend:<12}{r['bulk']:>16,.0f}{r['executemany']:>16,.0f}{ratio:>8.2f}")


if __name__ == "__main__":
    main()
