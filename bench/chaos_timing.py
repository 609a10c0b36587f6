"""Time to inject and to remove each mechanism in a normal finish (no kill), in a namespace
pair this script creates and deletes: tbf, HTB + u32, nft loss, the delaying proxy, and netem
where the kernel has it. Removal includes neutralising first and, for the proxy, its drain.

Run as root: ``.venv/bin/python bench/chaos_timing.py [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from controlplane.chaos import Injector
from controlplane.chaos import create_pair
from controlplane.chaos import parse_fault
from controlplane.chaos import parse_target
from controlplane.chaos import probe
from controlplane.settings import ChaosSettings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print("capabilities:", probe().as_dict())
    cases = [
        ("rate 10mbit", ""),
        ("rate 10mbit", ":8000"),
        ("loss 5%", ":8000"),
        ("delay 50ms", ":8000"),
        ("delay 50ms loss 1% rate 10mbit", ":8000"),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        topo = create_pair(prefix="cpb-", state_dir=Path(tmp) / "topo", ttl_s=600)
        injector = Injector(ChaosSettings(), Path(tmp) / "state")
        try:
            print("| fault | scope | mechanism | inject median (ms) | remove median (ms) |")
            print("|---|---|---|---|---|")
            for fault, port in cases:
                ins, outs, mech = [], [], {}
                for i in range(args.repeat):
                    target = parse_target(f"netns:{topo.server}{port}")
                    inj = injector.inject(f"t{i}", target, parse_fault(fault), ttl_s=60)
                    ins.append(inj.inject_s)
                    mech = inj.mechanisms
                    began = time.monotonic()
                    inj.remove()
                    outs.append(time.monotonic() - began)
                scope = f"port {port[1:]}" if port else "interface"
                how = ", ".join(f"{k}={v}" for k, v in mech.items())
                print(
                    f"| {fault} | {scope} | {how} | {statistics.median(ins) * 1000:.0f} "
                    f"| {statistics.median(outs) * 1000:.0f} |"
                )
        finally:
            topo.destroy()


if __name__ == "__main__":
    main()
