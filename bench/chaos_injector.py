"""The process a chaos benchmark kills: it builds a namespace pair, injects network and
process faults into it, reports, and sleeps until SIGKILL arrives (possibly mid-set-up).

``python bench/chaos_injector.py STATE_DIR PREFIX VICTIM_PID`` prints one JSON line per
finished step, so the benchmark knows how far it got before the kill.
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
    state_dir, prefix, victim = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    began = time.monotonic()
    topo = create_pair(prefix=prefix, state_dir=state_dir, ttl_s=600)
    print(json.dumps({"topology": [topo.client, topo.server]}), flush=True)
    injector = Injector(ChaosSettings(ttl_grace_s=1.0, watchdog_poll_s=0.05), state_dir)
    faults = [
        ("rate", f"netns:{topo.client}", "rate 4mbit loss 5%"),
        ("delay", f"netns:{topo.server}:8000", "delay 50ms"),
        ("pause", f"pid:{victim}", "pause"),
        ("hog", f"pid:{victim}", "cpu-hog 1"),
    ]
    for key, target, fault in faults:
        inj = injector.inject(key, parse_target(target), parse_fault(fault), ttl_s=120)
        step = {"key": key, "inject_s": inj.inject_s, "mechanisms": inj.mechanisms}
        print(json.dumps({**step, **inj.extra}), flush=True)
    print(json.dumps({"ready_s": time.monotonic() - began}), flush=True)
    time.sleep(3600)


if __name__ == "__main__":
    main()
