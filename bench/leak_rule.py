"""The memory-leak rule (alerts/leak.rules.yml) on simulated engines, run by promtool.

Two engines at 10 requests/s for ``--days`` (default 7), sampled every minute:

- ``leaky``: resident memory grows by 12 % per 100k requests from the start, with white noise;
- ``healthy``: flat memory with the same noise, a configuration switch every 8 hours (a step
  of -20 % to +30 %), and a restart every day (memory drops to 60 %, climbs back over 10
  minutes of warm-up, request counter reset).

Prints the minute the leak alert first fires (and the requests served by then) and how many
minutes the healthy engine's alert fired (goal: 0). promtool evaluates the real rule files;
the figures are read from its answers to deliberately unmet expectations.

``.venv/bin/python bench/leak_rule.py [--days 7] [--noise 0.005] [--seed 1]``
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RPS = 10.0
BASE = 8e9


def _series(
    minutes: int, noise: float, seed: int
) -> tuple[list[float], list[float], list[float], int, int]:
    rng = random.Random(seed)
    leaky = [BASE * (1 + 0.12 * RPS * 60 * t / 100_000) * (1 + rng.gauss(0, noise))
             for t in range(minutes)]  # fmt: skip
    healthy, counter = [], []
    level, count, warm = 1.0, 0.0, 0
    restarts = switches = 0
    for t in range(minutes):
        if t and t % (24 * 60) == 0:  # restart: memory drops, counter resets
            level, count, warm = 0.6, 0.0, 10
            restarts += 1
        elif t and t % (8 * 60) == 0:  # configuration switch
            level = 1.0 + rng.uniform(-0.2, 0.3)
            switches += 1
        if warm:
            level += (1.0 - level) / warm
            warm -= 1
        healthy.append(BASE * level * (1 + rng.gauss(0, noise)))
        counter.append(count)
        count += RPS * 60
    return leaky, healthy, counter, restarts, switches


def _got(output: str) -> list[float]:
    return [float(v.rstrip(",")) for v in re.findall(r"got: \{[^}]*\} (\S+)", output)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--noise", type=float, default=0.005, help="relative, per sample")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if shutil.which("promtool") is None:
        sys.exit("promtool not installed")
    minutes = int(args.days * 24 * 60)
    leaky, healthy, counter, restarts, switches = _series(minutes, args.noise, args.seed)
    steady = [RPS * 60 * t for t in range(minutes)]

    def values(xs: list[float]) -> str:
        return " ".join(f"{x:.0f}" for x in xs)

    def engine(name: str, rss: list[float], requests: list[float]) -> list[dict[str, str]]:
        return [
            {
                "series": "host_engine_process_resident_memory_bytes"
                f'{{job="cplane",instance="cp:8400",engine="{name}"}}',
                "values": values(rss),
            },
            {
                "series": "vllm:request_success_total"
                f'{{job="cplane-engines",instance="{name}:8000",engine="{name}",'
                'kind="reference",finished_reason="stop"}',
                "values": values(requests),
            },
        ]

    window = f"{minutes}m"
    end = f"{minutes - 1}m"
    firing = 'ALERTS{alertname="EngineMemoryLeak", alertstate="firing", engine="%s"}'
    test = {
        "rule_files": [
            str(ROOT / "alerts/canonical.rules.yml"),
            str(ROOT / "alerts/leak.rules.yml"),
        ],
        "evaluation_interval": "1m",
        "group_eval_order": ["cplane-canonical-requests", "cplane-leak"],
        "tests": [
            {
                "interval": "1m",
                "input_series": engine("leaky", leaky, steady)
                + engine("healthy", healthy, counter),
                "promql_expr_test": [
                    {
                        # First firing minute: the earliest timestamp of the ALERTS series.
                        "expr": f"min_over_time(timestamp({firing % 'leaky'})[{window}:1m]) / 60",
                        "eval_time": end,
                        "exp_samples": [{"labels": "{}", "value": -1}],
                    },
                    {
                        "expr": f"count_over_time(({firing % 'healthy'})[{window}:1m]) or vector(0)",
                        "eval_time": end,
                        "exp_samples": [{"labels": "{}", "value": -1}],
                    },
                ],
            }
        ],
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "leak.test.yml"
        path.write_text(yaml.safe_dump(test, sort_keys=False, width=1 << 30))
        done = subprocess.run(
            ["promtool", "test", "rules", str(path)], capture_output=True, text=True
        )
    got = _got(done.stdout + done.stderr)
    if len(got) != 2:
        sys.exit(f"unexpected promtool output:\n{(done.stdout + done.stderr)[-3000:]}")
    first, false_minutes = got
    print(
        f"simulated: {args.days:g} days at {RPS:g} requests/s, noise {args.noise:.1%} per sample"
    )
    print(
        f"leak of 12 % per 100k requests: first alert at minute {first:.0f} "
        f"({first * RPS * 60:,.0f} requests, memory +{0.12 * first * RPS * 60 / 1000:.1f} %)"
    )
    print(
        f"healthy engine ({switches} configuration switches, {restarts} restarts): "
        f"{false_minutes:.0f} minutes firing"
    )


if __name__ == "__main__":
    main()
