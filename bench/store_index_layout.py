"""Why the samples table has one time-first index: SQLite bulk-insert rate as the table
grows, for the index layouts the store could use, measured side by side (each batch goes to
every layout in turn, each in its own database file).

    python bench/store_index_layout.py [--batches 100]

Batches are 5,000 samples of 5,000 series at one timestamp, as a scrape cycle writes them;
rates are reported for the first and the last 20 batches.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

BATCH = 5000
LAYOUTS = {
    "(ts, series_id)  [the store]": ["(ts, series_id)"],
    "(series_id, ts)": ["(series_id, ts)"],
    "(series_id, ts) + (ts)": ["(series_id, ts)", "(ts)"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=100)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    connections: dict[str, sqlite3.Connection] = {}
    for i, (name, indexes) in enumerate(LAYOUTS.items()):
        con = sqlite3.connect(folder / f"layout{i}.db", isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute("CREATE TABLE samples (series_id INTEGER, ts FLOAT, value FLOAT)")
        for k, columns in enumerate(indexes):
            con.execute(f"CREATE INDEX ix{k} ON samples {columns}")
        connections[name] = con
    rates: dict[str, list[float]] = {name: [] for name in LAYOUTS}
    for b in range(args.batches):
        rows = [(n + 1, 1_700_000_000.0 + b, float(n)) for n in range(BATCH)]
        for name, con in connections.items():
            started = time.perf_counter()
            con.execute("BEGIN IMMEDIATE")
            con.executemany("INSERT INTO samples VALUES (?, ?, ?)", rows)
            con.execute("COMMIT")
            rates[name].append(BATCH / (time.perf_counter() - started))
    print(f"rows per layout at the end: {args.batches * BATCH:,}")
    print(f"{'index layout':<32}{'first 20 /s':>14}{'last 20 /s':>14}")
    for name, values in rates.items():
        first = statistics.median(values[:20])
        last = statistics.median(values[-20:])
        print(f"{name:<32}{first:>14,.0f}{last:>14,.0f}")


if __name__ == "__main__":
    main()
