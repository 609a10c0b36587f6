"""Parse time of a 5,000-series exposition (vLLM-style histograms and counters), the
collectors' parser against prometheus-client's own, in the same run.

"warm" is the steady state of a scrape loop (the engine's series were seen on an earlier
scrape, so the line cache knows them); "cold" is a page of series never seen before (a
fresh copy of the metric map each time, so nothing is cached).

    python bench/collectors_parse.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

from prometheus_client.parser import text_string_to_metric_families

from collectors import parse
from controlplane.engines.metric_maps import metric_map_for

BUCKETS = (0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, "+Inf")


def exposition(series: int = 5000) -> str:
    """Histogram buckets of vLLM's e2e latency over many models, plus counters, until
    ``series`` sample lines."""
    lines = [
        "# HELP vllm:e2e_request_latency_seconds e2e",
        "# TYPE vllm:e2e_request_latency_seconds histogram",
    ]
    count = 0
    model = 0
    while count < series - 200:
        for le in BUCKETS:
            lines.append(
                f'vllm:e2e_request_latency_seconds_bucket{{engine="0",le="{le}",'
                f'model_name="m{model}"}} {model * 7 + 1}.0'
            )
            count += 1
        lines.append(
            f'vllm:e2e_request_latency_seconds_count{{engine="0",model_name="m{model}"}} 9.0'
        )
        lines.append(
            f'vllm:e2e_request_latency_seconds_sum{{engine="0",model_name="m{model}"}} 3.5'
        )
        count += 2
        model += 1
    lines += ["# HELP vllm:prompt_tokens_total p", "# TYPE vllm:prompt_tokens_total counter"]
    for i in range(series - count):
        lines.append(f'vllm:prompt_tokens_total{{engine="0",model_name="c{i}"}} {i}.0')
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    text = exposition()
    n_lines = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    metric_map = metric_map_for("vllm")
    # CPU time of this thread is reported beside wall time: on a shared 2-core machine the
    # wall clock mostly measures the neighbours.
    ours: list[tuple[float, float]] = []
    cold: list[tuple[float, float]] = []
    theirs: list[tuple[float, float]] = []
    parse(text, source="e", metric_map=metric_map, ts=0.0)  # a first scrape
    for _ in range(args.repeats):
        wall, cpu = time.perf_counter(), time.thread_time()
        parse(text, source="e", metric_map=metric_map, ts=0.0)
        ours.append((time.perf_counter() - wall, time.thread_time() - cpu))
        fresh = dict(metric_map)
        wall, cpu = time.perf_counter(), time.thread_time()
        parse(text, source="e", metric_map=fresh, ts=0.0)
        cold.append((time.perf_counter() - wall, time.thread_time() - cpu))
        wall, cpu = time.perf_counter(), time.thread_time()
        for family in text_string_to_metric_families(text):
            list(family.samples)
        theirs.append((time.perf_counter() - wall, time.thread_time() - cpu))

    def ms(values: list[tuple[float, float]], i: int) -> float:
        return statistics.median(v[i] for v in values) * 1000

    print(f"sample lines: {n_lines}")
    print(f"{'':24}{'wall ms':>10}{'cpu ms':>10}")
    print(
        f"{'collectors.parse warm':24}{ms(ours, 0):>10.2f}{ms(ours, 1):>10.2f}   (goal <= 20 ms)"
    )
    print(f"{'collectors.parse cold':24}{ms(cold, 0):>10.2f}{ms(cold, 1):>10.2f}")
    print(f"{'prometheus_client':24}{ms(theirs, 0):>10.2f}{ms(theirs, 1):>10.2f}")
    print(f"speed-up (cpu), warm    {ms(theirs, 1) / ms(ours, 1):>10.1f}x")
    print(f"speed-up (cpu), cold    {ms(theirs, 1) / ms(cold, 1):>10.1f}x")


if __name__ == "__main__":
    main()
