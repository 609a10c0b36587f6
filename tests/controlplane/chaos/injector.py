"""A stand-in for a control plane process that injects faults and then gets SIGKILLed.

``python injector.py STATE_DIR TTL KEY TARGET FAULT [KEY TARGET FAULT ...]`` applies each
fault, prints one JSON line with the helper pids, and sleeps until killed. ``topology
STATE_DIR PREFIX`` creates a namespace pair instead and prints its names.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from controlplane.chaos import Injector
from controlplane.chaos import create_pair
from controlplane.chaos import parse_fault
from controlplane.chaos import parse_target
from controlplane.settings import ChaosSettings


def main() -> None:
    if sys.argv[1] == "topology":
        topo = create_pair(prefix=sys.argv[3], state_dir=Path(sys.argv[2]), ttl_s=600)
        print(json.dumps({"client": topo.client, "server": topo.server}), flush=True)
    else:
        settings = ChaosSettings(ttl_grace_s=1.0, watchdog_poll_s=0.05)
        injector = Injector(settings, Path(sys.argv[1]))
        ttl, rest = float(sys.argv[2]), sys.argv[3:]
        out: dict[str, object] = {}
        for i in range(0, len(rest), 3):
            key, target, fault = rest[i : i + 3]
            inj = injector.inject(key, parse_target(target), parse_fault(fault), ttl_s=ttl)
            out[key] = {"mechanisms": inj.mechanisms, **inj.extra}
        print(json.dumps(out), flush=True)
    time.sleep(3600)


if __name__ == "__main__":
    main()
