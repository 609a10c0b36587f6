"""Read latency on SQLite during bulk ingest: the store reads behind ``GET /api/v1/engines``
(the token check, then the engine list) while a writer process ingests flat out.

Two read modes, in alternating rounds under the same ingest so machine noise hits both:
``deferred`` (read-only sessions, what the API uses for GET) and ``immediate`` (every
transaction takes the write lock first, as all reads once did). The writer is a separate
process (its own GIL) with ``--writers`` threads, each committing ``--batch``-sample
transactions (the size of one large agent push) as fast as the store takes them.

    python bench/store_read_latency.py [--rounds 6] [--round-s 10] [--writers 4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy.exc import OperationalError

from controlplane.domain import Role
from controlplane.domain import Sample
from controlplane.schemas.engines import EngineCreate
from controlplane.schemas.engines import EngineRead
from controlplane.settings import Settings
from controlplane.store import engines
from controlplane.store import schema
from controlplane.store import users
from controlplane.store.base import utcnow
from controlplane.store.database import SessionFactory
from controlplane.store.database import make_engine
from controlplane.store.database import make_session_factory
from controlplane.store.database import unit_of_work
from controlplane.store.samples import insert_samples

READ_EVERY_S = 0.02


def _batch(i: int, size: int) -> list[Sample]:
    ts = 1_700_000_000.0 + i
    return [
        Sample(ts, f"engine-{n // 100}", f"m{(n % 100) // 20}", (("le", str(n % 20)),), float(n))
        for n in range(size)
    ]


def writer(data_dir: Path, threads: int, size: int, seconds: float) -> None:
    """Child process: ingest for ``seconds``, then print samples/s as JSON."""
    engine = make_engine(Settings(data_dir=data_dir))
    factory = make_session_factory(engine)
    stored = [0] * threads
    locked = [0] * threads
    deadline = time.monotonic() + seconds

    def loop(k: int) -> None:
        i = k * 1_000_000
        while time.monotonic() < deadline:
            samples = _batch(i, size)
            try:
                with factory() as session, session.begin():
                    stored[k] += insert_samples(session, samples)
            except OperationalError:  # busy timeout: SQLite's lock is not fair to waiters
                locked[k] += 1
            i += 1

    workers = [threading.Thread(target=loop, args=(k,)) for k in range(threads)]
    started = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    rate = sum(stored) / (time.monotonic() - started)
    print(json.dumps({"samples_per_s": rate, "locked": sum(locked)}))


def _read(factory: SessionFactory, secret: str) -> None:
    with factory() as session, session.begin():
        users.verify(session, secret, now=utcnow())
    with factory() as session, session.begin():
        [EngineRead.from_row(r) for r in engines.list_engines(session)]


def _setup(data_dir: Path) -> str:
    engine = make_engine(Settings(data_dir=data_dir))
    schema.upgrade(engine)
    with unit_of_work(make_session_factory(engine)) as s:
        user = users.create_user(s, name="bench", role=Role.viewer, actor="bench")
        _row, secret = users.create_token(s, user=user, name="b", ttl=None, actor="bench")
        for n in range(10):
            data = EngineCreate.model_validate(
                {"name": f"e{n}", "url": f"http://127.0.0.1:{9000 + n}", "admin_token": "t"}
            )
            engines.add_engine(s, data=data, actor="bench")
    engine.dispose()
    return secret


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds in all")
    parser.add_argument("--round-s", type=float, default=10.0)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--writer", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer:
        writer(args.data_dir, args.writers, args.batch, args.seconds)
        return

    data_dir = Path(tempfile.mkdtemp(prefix="cp-bench-read-"))
    secret = _setup(data_dir)
    engine = make_engine(Settings(data_dir=data_dir))
    factories = {
        "immediate": make_session_factory(engine),
        "deferred": make_session_factory(engine, read_only=True),
    }
    # Quiet baseline: reads with no writer at all.
    quiet: list[float] = []
    for _ in range(100):
        t0 = time.perf_counter()
        _read(factories["deferred"], secret)
        quiet.append(time.perf_counter() - t0)
    total_s = args.rounds * args.round_s + 3.0
    child = subprocess.Popen(
        [sys.executable, __file__, "--writer", "--data-dir", str(data_dir)]
        + ["--writers", str(args.writers), "--batch", str(args.batch)]
        + ["--seconds", str(total_s)],
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(2.0)  # the writers are up and committing
    latencies: dict[str, list[float]] = {name: [] for name in factories}
    failed = dict.fromkeys(factories, 0)
    for r in range(args.rounds):
        mode = ("deferred", "immediate")[r % 2]
        end = time.monotonic() + args.round_s
        while time.monotonic() < end:
            t0 = time.perf_counter()
            try:
                _read(factories[mode], secret)
            except OperationalError:  # waited out the busy timeout: what a 503 would be
                failed[mode] += 1
            latencies[mode].append(time.perf_counter() - t0)
            time.sleep(READ_EVERY_S)
    out, _ = child.communicate()
    report = json.loads(out.strip().splitlines()[-1])
    rate = report["samples_per_s"]
    engine.dispose()

    print(
        f"SQLite, {args.writers} writer threads x {args.batch}-sample transactions, "
        f"ingest {rate:,.0f} samples/s ({report['locked']} writes timed out on the lock); "
        f"{args.rounds} rounds of {args.round_s:g} s"
    )
    print("| reads | n | p50 ms | p99 ms | max ms | failed (locked) |")
    print("|---|---|---|---|---|---|")
    rows = [("no ingest (deferred)", quiet, 0)] + [
        (m, latencies[m], failed[m]) for m in ("immediate", "deferred")
    ]
    for name, values, lost in rows:
        ms = [v * 1000 for v in values]
        print(
            f"| {name} | {len(ms)} | {statistics.median(ms):.1f} | {_pct(ms, 0.99):.1f} "
            f"| {max(ms):.1f} | {lost} |"
        )


if __name__ == "__main__":
    main()
