"""False rejections: the probe over harmless changes (goal: none rejected).

A harmless change moves only knobs that leave the weights alone (batch size, streams,
queue delay) at the reference precision. Each of the changes is applied while closed-loop
load runs, so the probe's prompts share batches with traffic as they do during a bake, and
then checked at quality>=0.98.

    python bench/quality/false_rejections.py [--model small] [--changes 50] [--precision fp32]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import threading

from _common import THRESHOLD
from _common import admin
from _common import engine
from _common import load_avg

from controlplane.guard import quality as probe
from tuner.loadgen import LoadSpec
from tuner.loadgen import RequestShape
from tuner.loadgen import run_load_sync


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="small")
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--precision", default="fp32", help="Reference (and served) precision.")
    args = parser.parse_args()
    print(f"load average before: {load_avg()}")
    configs = itertools.cycle(
        {"max_batch_size": b, "streams": s, "max_queue_delay_ms": d}
        for b, s, d in itertools.product((1, 2, 4, 8, 16), (1, 2), (0.0, 2.0, 5.0))
    )
    with engine(args.model) as adapter:
        admin(adapter, "PUT", "/admin/config", {"precision": args.precision})
        reference = probe.record(adapter, probe.default_probe_set())
        # Load for as long as a check takes under it (twice the idle check, at least 3 s).
        load_s = max(3.0, 2 * probe.check(adapter, reference).duration_s)
        rejected = diverged = 0
        worst = 1.0
        margins: list[float] = []
        for i in range(args.changes):
            config = next(configs)
            admin(adapter, "PUT", "/admin/config", config)
            spec = LoadSpec(
                base_url=adapter.target.url,
                model=args.model,
                mode="closed",
                concurrency=4,
                duration_s=load_s,
                shapes=(RequestShape(prompt_len=32, max_tokens=16),),
                extra_body={"ignore_eos": True},
            )
            load = threading.Thread(target=run_load_sync, args=(spec,), daemon=True)
            load.start()
            r = probe.check(adapter, reference)
            load.join()
            rejected += r.agreement < THRESHOLD
            diverged += r.exact < 1.0
            worst = min(worst, r.agreement)
            margins += [p.margin for p in r.prompts if p.margin is not None]
            print(f"{i + 1:3} {config} agreement {r.agreement:.4f} exact {r.exact:.4f}")
        print(
            f"{args.precision}: harmless changes: {args.changes}; rejected at quality>={THRESHOLD}: {rejected}; "
            f"with any divergence: {diverged}; lowest agreement: {worst:.4f}"
        )
        if margins:
            print(
                f"reference margin at the divergences (nats): median "
                f"{statistics.median(margins):.3g}, max {max(margins):.3g} ({len(margins)})"
            )
    print(f"load average after: {load_avg()}")


if __name__ == "__main__":
    main()
