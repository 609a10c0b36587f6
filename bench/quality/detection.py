"""Detection: the smallest weight perturbation the probe flags at quality>=0.98, and what
each precision measures against fp32.

Records the shipped probe set at fp32, then for each relative noise level switches the
engine onto perturbed weights (the weight-noise fault) and checks; then the clean
reduced precisions.

    python bench/quality/detection.py [--model small]
"""

from __future__ import annotations

import argparse

from _common import THRESHOLD
from _common import admin
from _common import engine
from _common import load_avg

from controlplane.guard import quality as probe

LEVELS = (0.0001, 0.0003, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="small")
    args = parser.parse_args()
    print(f"load average before: {load_avg()}")
    with engine(args.model) as adapter:
        reference = probe.record(adapter, probe.default_probe_set())
        smallest = None
        print(f"{'noise':>8} {'agreement':>9} {'exact':>6} {'kl':>10} {'nll_delta':>10} flagged")
        for level in LEVELS:
            admin(adapter, "PUT", "/admin/faults", {"weight_noise": level})
            r = probe.check(adapter, reference)
            flagged = r.agreement < THRESHOLD
            if flagged and smallest is None:
                smallest = level
            print(
                f"{level:8.4f} {r.agreement:9.4f} {r.exact:6.3f} {r.kl or 0:10.3g} "
                f"{r.nll_delta or 0:10.3g} {'yes' if flagged else 'no'}"
            )
        admin(adapter, "DELETE", "/admin/faults")
        print(f"smallest relative noise flagged at quality>={THRESHOLD}: {smallest}")
        knobs = admin(adapter, "GET", "/admin/search-space")["knobs"]
        precisions = next(k["choices"] for k in knobs if k["name"] == "precision")
        for precision in precisions:
            admin(adapter, "PUT", "/admin/config", {"precision": precision})
            r = probe.check(adapter, reference)
            print(
                f"{precision:>8} {r.agreement:9.4f} {r.exact:6.3f} {r.kl or 0:10.3g} "
                f"{r.nll_delta or 0:10.3g} {'yes' if r.agreement < THRESHOLD else 'no'}"
            )
    print(f"load average after: {load_avg()}")


if __name__ == "__main__":
    main()
