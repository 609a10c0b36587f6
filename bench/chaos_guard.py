"""Guard reaction per fault size: a real engine in one namespace, load from another, and for
each fault two guarded changes baked while the fault is on the path:

- a harmless change (``max_queue_delay_ms`` 1 <-> 2): the right reaction is to commit;
- a slow change (``max_queue_delay_ms`` 400 with fewer clients than the batch size, so an idle
  executor waits the full 400 ms for a batch): the right reaction is a rollback, and its
  detection time (bake start to verdict) is the figure.

Faults: delay 20/50/200 ms, loss 1/5/20 %, rate caps 10/2/0.5 mbit, each with the mechanism
this kernel ran (netem, or the proxy / nftables / tbf fallbacks). Prints a markdown table
and writes a PNG.

Run as root: ``.venv/bin/python bench/chaos_guard.py [--png docs/benchmarks-chaos-guard.png]``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from controlplane.chaos import create_pair  # noqa: E402
from controlplane.guard import RolloutRunner  # noqa: E402
from controlplane.settings import Settings  # noqa: E402
from controlplane.store import rollouts  # noqa: E402
from controlplane.store import schema  # noqa: E402
from controlplane.store.database import make_engine  # noqa: E402
from controlplane.store.database import make_session_factory  # noqa: E402
from tests.controlplane.chaos.test_guard_proof import FaultDuringBake  # noqa: E402
from tests.controlplane.chaos.test_guard_proof import NsLoad  # noqa: E402
from tests.controlplane.chaos.test_guard_proof import _propose  # noqa: E402
from tests.controlplane.chaos.test_guard_proof import start_engine_in  # noqa: E402
from tests.controlplane.guard.conftest import FAST  # noqa: E402
from tests.controlplane.guard.conftest import register  # noqa: E402

FAULTS = [
    ("none", None),
    ("delay 20ms", "port"),
    ("delay 50ms", "port"),
    ("delay 200ms", "port"),
    ("loss 1%", "port"),
    ("loss 5%", "port"),
    ("loss 20%", "port"),
    ("rate 10mbit", "iface"),
    ("rate 2mbit", "iface"),
    ("rate 500kbit", "iface"),
]


def bake(
    work: Path, topo: Any, engine: Any, fault: str, scope: str | None, *, slow: bool, slo: str
) -> dict[str, Any]:
    db = make_engine(Settings(data_dir=work / f"db-{random.randrange(10**9)}"))
    schema.upgrade(db)
    sessions = make_session_factory(db)
    engine_id = register(sessions, engine, slo, "error_rate<=1%")
    bake_s = 10.0 if slow else 5.0
    headers = {"Authorization": f"Bearer {engine.admin_token}"}
    current = httpx.get(f"{engine.url}/admin/config", headers=headers).json()
    harmless = 2.0 if current.get("max_queue_delay_ms") == 1.0 else 1.0  # always a real change
    changes = {"max_queue_delay_ms": 400.0 if slow else harmless}
    rollout_id = _propose(sessions, engine_id, changes, bake_s=bake_s)
    injected = None
    if scope is not None:
        target = f"netns:{topo.server}:8000" if scope == "port" else f"netns:{topo.server}"
        injected = FaultDuringBake(target, fault, work / "state")
    load = NsLoad(topo, seconds=bake_s + 6, concurrency=4)
    state = RolloutRunner(session_factory=sessions, policy=FAST).execute(rollout_id)
    load.stop()
    mechanisms = injected.finish().mechanisms if injected is not None else {}
    with sessions() as s:
        verdict = rollouts.get_rollout(s, rollout_id).evidence.get("verdict", {})
    db.dispose()
    if slow and state.value == "committed":
        # A missed slow change stays on the engine: take the queue delay off for the next run.
        back = {"max_queue_delay_ms": 0.0}
        httpx.put(f"{engine.url}/admin/config", json=back, headers=headers, timeout=60)
    return {
        "state": state.value,
        "outcome": verdict.get("outcome"),
        "at_s": verdict.get("at_s"),
        "mechanism": ",".join(f"{k}={v}" for k, v in mechanisms.items()) or "-",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--png", default=str(ROOT / "docs" / "benchmarks-chaos-guard.png"))
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        topo = create_pair(prefix="cpb-", state_dir=work / "topo", ttl_s=1800)
        try:
            gen = start_engine_in(topo, work)
            engine = next(gen)
            warm = NsLoad(topo, seconds=3, concurrency=4).join()
            # Harmless changes are judged with the guard tests' headroom (2x the warm p99);
            # the slow change against 1.5x, still far below the 400 ms it adds.
            loose = f"p99_ms<={max(1, round(warm['p99_s'] * 2000))}"
            tight = f"p99_ms<={max(1, round(warm['p99_s'] * 1500))}"
            print(f"warm p99 {warm['p99_s'] * 1000:.0f} ms -> {loose} / {tight}", flush=True)
            for fault, scope in FAULTS:
                harmless = bake(work, topo, engine, fault, scope, slow=False, slo=loose)
                slow = bake(work, topo, engine, fault, scope, slow=True, slo=tight)
                row = {"fault": fault, "harmless": harmless, "slow": slow}
                rows.append(row)
                print(json.dumps(row), flush=True)
            gen.close()
        finally:
            topo.destroy()
    print()
    print("| fault | mechanism | harmless change | slow change | detection (s) |")
    print("|---|---|---|---|---|")
    for r in rows:
        h, s = r["harmless"], r["slow"]
        det = f"{s['at_s']:.1f}" if s["state"] == "rolled_back" and s["at_s"] else "-"
        mech = s["mechanism"] if s["mechanism"] != "-" else h["mechanism"]
        print(
            f"| {r['fault']} | {mech} | {h['state']} ({h['outcome']}) "
            f"| {s['state']} ({s['outcome']}) | {det} |"
        )
    plot(rows, Path(args.png))


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r["fault"] for r in rows]
    detection = [
        r["slow"]["at_s"] if r["slow"]["state"] == "rolled_back" and r["slow"]["at_s"] else 0.0
        for r in rows
    ]
    false_rb = [r["harmless"]["state"] == "rolled_back" for r in rows]
    fig, ax = plt.subplots(figsize=(9, 4))
    bars = ax.bar(labels, detection, color=["#c0392b" if f else "#2e86c1" for f in false_rb])
    for bar, r in zip(bars, rows, strict=True):
        note = "missed" if r["slow"]["state"] != "rolled_back" else ""
        if r["harmless"]["state"] == "rolled_back":
            note += (" / " if note else "") + "false rollback"
        if note:
            ax.annotate(note, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center")
    ax.set_ylabel("slow change: bake start to rollback (s)")
    ax.set_title(
        "Guard under chaos: detection time of a slow change, per fault (red: harmless change rolled back)"
    )
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
