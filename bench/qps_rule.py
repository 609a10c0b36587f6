"""The QPS-swing rule (alerts/qps.rules.yml) on simulated traffic, run by promtool.

Engines scraped every 15 s for ``--hours`` (default 24), evaluated every 15 s:

- steady Poisson traffic at 1, 2, 5 and 20 requests/s (the noise a real steady load has);
- a trickle of 0.3 requests/s, below the rule's traffic floor;
- swinging traffic at 5 requests/s on average: a square wave between 0.5x and 1.5x the mean,
  period 4 minutes (coefficient of variation of the true rate: 0.5).

Prints, per engine, the median coefficient of variation, the minutes the alert fired (goal: 0 for the steady ones and the
trickle) and, for the swinging one, the minute it first fired. promtool evaluates the real
rule files; figures are read from its answers to deliberately unmet expectations.

``.venv/bin/python bench/qps_rule.py [--hours 24] [--seed 1]``
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
STEP_S = 15
STEADY = {"steady-1": 1.0, "steady-2": 2.0, "steady-5": 5.0, "steady-20": 20.0, "trickle": 0.3}


def _counter(rates: np.ndarray, rng: np.random.Generator) -> str:
    counts = np.cumsum(rng.poisson(rates * STEP_S))
    return " ".join(str(int(c)) for c in np.concatenate([[0], counts]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--debug", action="store_true", help="print promtool's answer")
    args = parser.parse_args()
    if shutil.which("promtool") is None:
        sys.exit("promtool not installed")
    rng = np.random.default_rng(args.seed)
    steps = int(args.hours * 3600 / STEP_S)
    t = np.arange(steps) * STEP_S
    engines = {name: np.full(steps, rate) for name, rate in STEADY.items()}
    engines["swing-5"] = np.where((t // 120) % 2 == 0, 2.5, 7.5)
    series = [
        {
            "series": "vllm:request_success_total"
            f'{{job="cplane-engines",instance="{name}:8000",engine="{name}",'
            'kind="reference",finished_reason="stop"}',
            "values": _counter(rates, rng),
        }
        for name, rates in engines.items()
    ]
    minutes = int(args.hours * 60)
    end = f"{minutes}m"
    firing = 'ALERTS{alertname="EngineQPSSwing", alertstate="firing"}'
    checks = [
        {
            # Minutes firing per engine: samples of the ALERTS series (one per 15 s) / 4.
            "expr": f"sum by (engine) (count_over_time({firing}[{minutes}m])) / 4",
            "eval_time": end,
            "exp_samples": [{"labels": "{}", "value": -1}],
        },
        {
            # First firing minute, looked for in the first hour (a subquery over the whole run
            # would pass promtool's sample limit).
            "expr": f'min_over_time(timestamp({firing[:-1]}, engine="swing-5"}})[60m:15s]) / 60',
            "eval_time": "60m",
            "exp_samples": [{"labels": "{}", "value": -1}],
        },
        {
            "expr": f"quantile_over_time(0.5, cplane:engine_requests:cv10m[{minutes}m])",
            "eval_time": end,
            "exp_samples": [{"labels": "{}", "value": -1}],
        },
    ]
    test = {
        "rule_files": [
            str(ROOT / "alerts/canonical.rules.yml"),
            str(ROOT / "alerts/qps.rules.yml"),
        ],
        "evaluation_interval": f"{STEP_S}s",
        "group_eval_order": ["cplane-canonical-requests", "cplane-qps"],
        "tests": [{"interval": f"{STEP_S}s", "input_series": series, "promql_expr_test": checks}],
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "qps.test.yml"
        path.write_text(yaml.safe_dump(test, sort_keys=False, width=1 << 30))
        done = subprocess.run(
            ["promtool", "test", "rules", str(path)], capture_output=True, text=True
        )
    out = done.stdout + done.stderr
    if "--debug" in sys.argv:
        print(out[-4000:])
    if "err:" in out:
        sys.exit(f"promtool could not evaluate a check:\n{out[-3000:]}")
    firing_minutes = {e: 0.0 for e in engines}
    median_cv: dict[str, float] = {}
    first = None
    for block in out.split("expr:")[1:]:
        got = block.split("got:", 1)[1] if "got:" in block else ""
        if "count_over_time" in block.split("\n", 1)[0]:
            for engine, value in re.findall(r'engine="([^"]+)"\} (\S+)', got):
                firing_minutes[engine] = float(value.rstrip(","))
        elif "quantile_over_time" in block.split("\n", 1)[0]:
            for engine, value in re.findall(r'engine="([^"]+)"[^}]*\} (\S+)', got):
                median_cv[engine] = float(value.rstrip(","))
        elif m := re.search(r"\{[^}]*\} (\S+)", got):
            first = float(m.group(1).rstrip(","))
    print(f"simulated: {args.hours:g} h, scrape and evaluation every {STEP_S} s")
    for engine, value in firing_minutes.items():
        rate = STEADY.get(engine, 5.0)
        cv = median_cv.get(engine, float("nan"))
        print(f"{engine:<10} {rate:>5g} req/s  median CV {cv:.3f}  firing {value:>6.1f} min")
    print(
        f"swing-5 first fired at minute {first:.1f}"
        if first is not None
        else "swing-5 never fired"
    )


if __name__ == "__main__":
    main()
