"""Leftovers after SIGKILL: 20 runs in which the injecting process is killed mid-experiment.

Each run starts ``chaos_injector.py`` (namespace pair; rate+loss, a delaying proxy, a paused
process, a CPU hog), kills it with SIGKILL either after everything is in place or at a random
moment during set-up, and then counts what is left once the watchdogs had 5 s: namespaces,
qdiscs with the reserved handle, nft tables, proxies and hogs still running, the victim still
stopped, state files. Prints per-run rows and the totals; also inject and cleanup times.

Run as root: ``.venv/bin/python bench/chaos_cleanup.py [--runs 20]``.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from controlplane.chaos._commands import in_netns
from controlplane.chaos._commands import run
from controlplane.settings import ChaosSettings

HERE = Path(__file__).resolve().parent
TABLE = ChaosSettings().nft_table


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return None


def _netns() -> set[str]:
    return {line.split()[0] for line in run(["ip", "netns", "list"]).out.splitlines() if line}


def one_run(i: int, prefix: str, work: Path, *, mid_setup: bool) -> dict[str, Any]:
    state_dir = work / f"run{i}"
    victim = subprocess.Popen(["sleep", "600"])
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "chaos_injector.py"), str(state_dir), prefix, str(victim.pid)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    steps: list[dict[str, Any]] = []
    if mid_setup:
        time.sleep(random.uniform(0.3, 4.0))
    else:
        while line := proc.stdout.readline():
            steps.append(json.loads(line))
            if "ready_s" in steps[-1]:
                break
    killed = time.monotonic()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for line in proc.stdout.read().splitlines():
        steps.append(json.loads(line))
    proc.stdout.close()
    helpers = [int(s["proxy_pid"]) for s in steps if s.get("proxy_pid")]
    helpers += [int(p) for s in steps for p in s.get("hog_pids", [])]

    def clean() -> bool:
        return not list(state_dir.glob("*.json")) and _state(victim.pid) != "T"

    while not clean() and time.monotonic() - killed < 5:
        time.sleep(0.02)
    cleanup_s = time.monotonic() - killed
    time.sleep(0.2)
    ours = [n for n in _netns() if n.startswith(prefix)]
    left = {
        "namespaces": len(ours),
        "nft_tables": sum(
            run(in_netns(n, ["nft", "list", "table", "inet", TABLE])).ok for n in ours
        )
        + run(["nft", "list", "table", "inet", TABLE]).ok,
        "helpers": sum(_state(p) not in (None, "Z") for p in helpers),
        "stopped": int(_state(victim.pid) == "T"),
        "state_files": len(list(state_dir.glob("*.json"))) if state_dir.exists() else 0,
    }
    qdiscs = 0
    for n in ours:
        qdiscs += run(in_netns(n, ["tc", "qdisc", "show"])).out.count(ChaosSettings().qdisc_handle)
    left["qdiscs"] = qdiscs
    for n in ours:  # never leave a run's debris for the next one
        run(["ip", "netns", "del", n])
    victim.kill()
    victim.wait()
    injects = [float(s["inject_s"]) for s in steps if "inject_s" in s]
    return {
        "run": i,
        "killed": "mid-setup" if mid_setup else "mid-experiment",
        "steps_done": sum(1 for s in steps if "key" in s),
        "cleanup_s": round(cleanup_s, 3),
        "inject_s": injects,
        "left": left,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    prefix = f"cpb-{random.randrange(16**4):04x}-"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            row = one_run(i, prefix, Path(tmp), mid_setup=i % 2 == 1)
            rows.append(row)
            print(json.dumps(row), flush=True)
    totals: dict[str, int] = {}
    for row in rows:
        for k, v in row["left"].items():
            totals[k] = totals.get(k, 0) + v
    after = [r["cleanup_s"] for r in rows if r["killed"] == "mid-experiment"]
    by_kind: dict[str, list[float]] = {}
    for r in rows:
        for kind, t in zip(
            ("rate+loss", "delay", "pause", "cpu-hog"), r["inject_s"], strict=False
        ):
            by_kind.setdefault(kind, []).append(t)
    print("leftovers after", len(rows), "SIGKILLed runs:", json.dumps(totals))
    med, worst = statistics.median(after), max(after)
    print(f"cleanup after SIGKILL (s): median {med:.3f} max {worst:.3f}")
    for kind, ts in by_kind.items():
        print(f"inject {kind}: median {statistics.median(ts) * 1000:.0f} ms (n={len(ts)})")


if __name__ == "__main__":
    main()
