"""Server time and weight of the web UI's pages.

    python bench/ui/render.py [--engines 1000] [--runs 20] [--postgres URL]

A fresh store (SQLite by default) holds ``--engines`` engines, each with labels, a last
known good config and an SLO, and one engine with 24 h of scrapes every 15 s of every
canonical series the engine page charts (latency and TTFT histograms with 12 buckets). The
real app serves the pages in process (httpx's ASGI transport: routing, session check,
queries and template rendering, no socket), signed in through the real sign-in form.

Figures, median and 95th percentile over ``--runs``:
1. the fleet page with every engine registered (at the default page size of 200 rows, and
   with all of them on one page), and the one request that brings its sparklines;
2. the engine page with the 24 h range (the HTML), and the charts' data it then fetches
   (nine series requests, as the browser makes them);
3. the page weight without charts' data: the HTML plus every script and stylesheet it
   loads, raw and gzipped.
"""

from __future__ import annotations

import argparse
import gzip
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from controlplane.api.app import create_app
from controlplane.domain import Role
from controlplane.domain import Sample
from controlplane.domain import parse_slo
from controlplane.schemas.engines import EngineCreate
from controlplane.settings import Settings
from controlplane.settings import UiSettings
from controlplane.store import configs
from controlplane.store import engines
from controlplane.store import samples
from controlplane.store import schema
from controlplane.store import slos
from controlplane.store import users
from controlplane.store.database import make_engine
from controlplane.store.database import make_session_factory
from controlplane.store.database import unit_of_work

BUCKETS = ("0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "+Inf")
CONFIG = {"max_batch_size": 8, "streams": 1, "precision": "fp32", "max_queue_delay_ms": 0.0}


def seed(settings: Settings, n: int) -> tuple[str, str]:
    db = make_engine(settings)
    schema.upgrade(db)
    factory = make_session_factory(db)
    with unit_of_work(factory) as s:
        user = users.create_user(s, name="bench", role=Role.admin, actor="bench")
        _row, token = users.create_token(s, user=user, name="bench", ttl=None, actor="bench")
        for i in range(n):
            data = EngineCreate.model_validate(
                {
                    "name": f"llm-{i:04d}",
                    "url": f"http://10.0.{i // 250}.{i % 250}:8000",
                    "labels": {"team": f"t{i % 7}", "region": f"r{i % 3}", "gpu": "h100"},
                }
            )
            row = engines.add_engine(s, data=data, actor="bench")
            cfg = configs.record_config(
                s, engine_id=row.id, config=CONFIG, source="observed", actor="bench"
            )
            configs.mark_last_known_good(s, cfg)
            slos.set_slo(s, engine_id=row.id, slo=parse_slo("p99_ms<=500"), actor="bench")
    now = time.time()
    batch: list[Sample] = []
    source = "llm-0000"
    for k in range(24 * 3600 // 15 + 1):
        ts = now - 24 * 3600 + 15 * k
        done = 40.0 * 15 * k
        batch += [
            Sample(ts, source, "requests_succeeded_total", (), done),
            Sample(ts, source, "requests_failed_total", (), done * 0.001),
            Sample(ts, source, "generation_tokens_total", (), done * 64),
            Sample(ts, source, "requests_waiting", (), float(k % 5)),
            Sample(ts, source, "requests_running", (), 8.0),
            Sample(ts, source, "kv_cache_usage_ratio", (), 0.4),
        ]
        for j, le in enumerate(BUCKETS):
            share = min(1.0, (j + 1) / 8)
            batch.append(
                Sample(ts, source, "request_latency_seconds_bucket", (("le", le),), done * share)
            )
            batch.append(
                Sample(
                    ts, source, "time_to_first_token_seconds_bucket", (("le", le),), done * share
                )
            )
        if len(batch) > 50_000:
            with unit_of_work(factory) as s:
                samples.insert_samples(s, batch)
            batch = []
    with unit_of_work(factory) as s:
        samples.insert_samples(s, batch)
    db.dispose()
    return "bench", token


def timed(fn: Callable[[], httpx.Response], runs: int) -> tuple[float, float, httpx.Response]:
    fn()  # warm: templates compiled, caches filled
    times = []
    response = None
    for _ in range(runs):
        t0 = time.perf_counter()
        response = fn()
        times.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, response.text[:300]
    times.sort()
    p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
    assert response is not None
    return statistics.median(times), p95, response


def weight(client: TestClient, html: str) -> tuple[int, int]:
    assets = re.findall(r'(?:src|href)="(/ui/(?:static/[^"]+|plotly\.[a-z.]+))"', html)
    bodies = [html.encode()] + [client.get(a).content for a in assets]
    return sum(len(b) for b in bodies), sum(len(gzip.compress(b)) for b in bodies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--postgres", help="a PostgreSQL URL to use instead of SQLite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Settings(data_dir=Path(tmp), database_url=args.postgres or None)
        t0 = time.perf_counter()
        name, token = seed(base, args.engines)
        print(
            f"seeded {args.engines} engines and 24 h of one engine in {time.perf_counter() - t0:.0f} s"
        )
        for page_size in (200, args.engines):
            settings = base.model_copy(update={"ui": UiSettings(page_size=page_size)})
            with TestClient(create_app(settings), follow_redirects=False) as client:
                signed = client.post("/ui/sign-in", data={"name": name, "token": token})
                assert signed.status_code == 303
                med, p95, fleet = timed(lambda: client.get("/ui/fleet"), args.runs)
                rows = fleet.text.count("data-engine-id=")
                raw, gz = weight(client, fleet.text)
                print(
                    f"fleet page, {rows} rows of {args.engines}: {med:.0f} ms median, "
                    f"{p95:.0f} ms p95; weight {raw / 1024:.0f} KiB ({gz / 1024:.0f} KiB gzipped)"
                )
                ids = ",".join(re.findall(r'data-engine-id="(\d+)"', fleet.text))
                med, p95, _ = timed(
                    lambda ids=ids: client.get(f"/ui/fleet/stats.json?ids={ids}"), args.runs
                )
                print(
                    f"  its sparklines and SLO status ({rows} rows, one request): {med:.0f} ms median, {p95:.0f} ms p95"
                )
                if page_size != 200:
                    continue
                med, p95, engine = timed(lambda: client.get("/ui/engines/1?range=24h"), args.runs)
                raw, gz = weight(client, engine.text)
                print(
                    f"engine page, 24 h range (HTML): {med:.0f} ms median, {p95:.0f} ms p95; "
                    f"weight {raw / 1024:.0f} KiB ({gz / 1024:.0f} KiB gzipped) without charts' data"
                )
                urls = [
                    u.replace("&amp;", "&")
                    for u in re.findall(r'data-series-url="([^"]+)"', engine.text)
                ]

                def charts(urls: list[str] = urls) -> httpx.Response:
                    last = None
                    for u in urls:
                        last = client.get(u)
                        assert last.status_code == 200
                    assert last is not None
                    return last

                med, p95, _ = timed(charts, max(3, args.runs // 4))
                print(
                    f"  its charts' data, {len(urls)} series of 24 h: {med:.0f} ms median, {p95:.0f} ms p95 (sequential)"
                )
                tuning = client.get("/ui/tuning")
                raw, gz = weight(client, tuning.text)
                print(
                    f"tuning list page weight: {raw / 1024:.0f} KiB ({gz / 1024:.0f} KiB gzipped)"
                )
                plotly = client.get("/ui/plotly.min.js").content
                print(
                    f"a tuning run page adds Plotly: {len(plotly) / 1024:.0f} KiB "
                    f"({len(gzip.compress(plotly)) / 1024:.0f} KiB gzipped), on that page only"
                )


if __name__ == "__main__":
    main()
