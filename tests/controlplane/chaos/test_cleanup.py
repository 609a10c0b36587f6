"""Nothing survives a SIGKILL of the injecting process: the watchdog (its own process, its
own session) undoes qdiscs, nft tables, proxies, CPU hogs and stopped processes; the TTL holds
even while the injector lives; namespaces of a killed creator are deleted; and the start-up
sweep removes what an orphaned state file or a stray reserved handle left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from controlplane.chaos import Capabilities
from controlplane.chaos import Injection
from controlplane.chaos import Injector
from controlplane.chaos import NetFault
from controlplane.chaos import Topology
from controlplane.chaos import parse_fault
from controlplane.chaos import parse_target
from controlplane.chaos import root_qdisc
from controlplane.chaos import sweep
from controlplane.chaos._commands import in_netns
from controlplane.chaos._commands import run
from controlplane.chaos._watchdog import proc_start
from controlplane.chaos._watchdog import write_state
from controlplane.settings import ChaosSettings
from tests.controlplane.chaos.conftest import PREFIX
from tests.controlplane.chaos.conftest import wait_for

INJECTOR = str(Path(__file__).with_name("injector.py"))
HANDLE = ChaosSettings().qdisc_handle
TABLE = ChaosSettings().nft_table

pytestmark = pytest.mark.netns


def _start(*args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen([sys.executable, INJECTOR, *args], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, "injector died before reporting"
    return proc, json.loads(line)


def _kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.stdout is not None
    proc.stdout.close()


def _has_table(netns: str) -> bool:
    return run(in_netns(netns, ["nft", "list", "table", "inet", TABLE])).ok


def _ours(netns: str, dev: str) -> bool:
    root = root_qdisc(netns, dev)
    return root is not None and root.get("handle") == f"{HANDLE}:"


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return None


def test_sigkill_mid_experiment_leaves_no_network_fault(topo: Topology, state_dir: Path) -> None:
    proc, info = _start(
        str(state_dir),
        "60",
        "net1",
        f"netns:{topo.client}",
        "rate 4mbit loss 5%",
        "net2",
        f"netns:{topo.server}:9200",
        "delay 50ms",
    )
    proxy = info["net2"].get("proxy_pid")
    assert _ours(topo.client, topo.client_dev) and _has_table(topo.client)
    assert _has_table(topo.server) and proxy
    began = time.monotonic()
    _kill(proc)
    wait_for(lambda: not list(state_dir.glob("*.json")), timeout=5, what="watchdog cleanup")
    took = time.monotonic() - began
    assert not _ours(topo.client, topo.client_dev)
    assert not _has_table(topo.client) and not _has_table(topo.server)
    wait_for(lambda: _state(proxy) is None, timeout=3, what="proxy to exit")
    assert not list(state_dir.iterdir()), list(state_dir.iterdir())
    assert took < 3


def test_sigkill_continues_a_paused_process_and_stops_cpu_hogs(state_dir: Path) -> None:
    victim = subprocess.Popen(["sleep", "600"])
    try:
        proc, info = _start(
            str(state_dir),
            "60",
            "p1",
            f"pid:{victim.pid}",
            "pause",
            "p2",
            f"pid:{victim.pid}",
            "cpu-hog 2",
        )
        hogs = info["p2"]["hog_pids"]
        assert _state(victim.pid) == "T" and all(_state(h) == "R" for h in hogs)
        _kill(proc)
        wait_for(lambda: _state(victim.pid) == "S", timeout=5, what="SIGCONT")
        wait_for(lambda: all(_state(h) in (None, "Z") for h in hogs), timeout=5, what="hogs")
    finally:
        victim.kill()
        victim.wait()


def test_ttl_is_enforced_while_the_injector_still_lives(topo: Topology, state_dir: Path) -> None:
    proc, _ = _start(str(state_dir), "1", "ttl", f"netns:{topo.server}", "rate 1mbit")
    try:
        assert _ours(topo.server, topo.server_dev)
        # TTL 1 s + grace 1 s: the watchdog takes the fault off with the injector alive.
        wait_for(lambda: not _ours(topo.server, topo.server_dev), timeout=5, what="TTL")
        assert proc.poll() is None
    finally:
        _kill(proc)


class _SlowSetUp(Injector):
    """The qdisc goes on only after longer than the TTL and its grace, as when a helper
    process (the delaying proxy) is slow to start on a loaded host."""

    def _qdisc(self, inj: Injection, fault: NetFault, caps: Capabilities) -> None:
        time.sleep(1.2)
        super()._qdisc(inj, fault, caps)


def test_the_ttl_counts_from_the_end_of_set_up(topo: Topology, state_dir: Path) -> None:
    settings = ChaosSettings(ttl_grace_s=0.2, watchdog_poll_s=0.05)
    target, fault = parse_target(f"netns:{topo.server}"), parse_fault("rate 1mbit")
    began = time.monotonic()
    # A watchdog counting from before set-up would have cut this in the middle (the
    # injection then fails with "aborted while being applied").
    inj = _SlowSetUp(settings, state_dir).inject("slow", target, fault, ttl_s=0.5)
    try:
        assert time.monotonic() - began > 0.7 and _ours(topo.server, topo.server_dev)
        wait_for(lambda: not _ours(topo.server, topo.server_dev), timeout=5, what="TTL")
        assert not inj.active
    finally:
        inj.remove()


def test_namespaces_of_a_killed_creator_are_deleted(tmp_path: Path, netns_ok: None) -> None:
    proc, names = _start("topology", str(tmp_path / "st"), PREFIX)
    listed = run(["ip", "netns", "list"]).out
    assert names["client"] in listed and names["server"] in listed
    _kill(proc)

    def gone() -> bool:
        out = run(["ip", "netns", "list"]).out
        return names["client"] not in out and names["server"] not in out

    wait_for(gone, timeout=5, what="namespaces to go")


def test_startup_sweep_undoes_orphans_and_stray_marks(topo: Topology, state_dir: Path) -> None:
    dev = topo.server_dev
    rate = ["tc", "qdisc", "add", "dev", dev, "root", "handle", f"{HANDLE}:", "tbf"]
    rate += ["rate", "1mbit", "burst", "32kbit", "latency", "50ms"]
    assert run(in_netns(topo.server, rate)).ok
    table = f"table inet {TABLE} {{\n}}\n"
    assert run(in_netns(topo.client, ["nft", "-f", "-"]), stdin=table).ok
    # An orphan: a state file whose owner is long dead and that has no watchdog.
    state_dir.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    write_state(
        state_dir / "orphan.json",
        {
            "owner_pid": dead.pid,
            "owner_start": "0",
            "deadline": time.time() + 600,
            "undo": [{"kind": "nft", "netns": topo.client, "table": TABLE}],
        },
    )
    devices: list[tuple[str | None, str]] = [(topo.server, dev), (topo.client, topo.client_dev)]
    log = sweep(state_dir, table=TABLE, handle=HANDLE, devices=devices)
    assert not _ours(topo.server, dev) and not _has_table(topo.client)
    assert not (state_dir / "orphan.json").exists()
    assert any("swept qdisc" in line for line in log)
    assert proc_start(os.getpid()) is not None
