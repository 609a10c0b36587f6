"""Chaos tests need root and network namespaces; they build every namespace they use and
delete it afterwards (fixture finalizers, a watchdog per topology, a final sweep).

Without root or ``ip netns`` they skip with the reason, unless ``CP_TEST_REQUIRE_NETNS=1``
turns the skip into a failure. Namespaces are named ``cpt-<random>`` so the final check can
tell ours from anything else on the machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controlplane.chaos import Topology
from controlplane.chaos import create_pair
from controlplane.chaos._commands import run
from controlplane.settings import ChaosSettings

PREFIX = "cpt-"
NETPROBE = str(Path(__file__).with_name("netprobe.py"))


def _netns_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "chaos tests need root (network namespaces, tc, nft)"
    for tool in ("ip", "tc", "nft", "unshare"):
        if shutil.which(tool) is None:
            return f"chaos tests need `{tool}` on PATH"
    if not run(["ip", "netns", "list"]).ok:
        return "`ip netns` is not usable here"
    return None


@pytest.fixture(scope="session")
def netns_ok() -> None:
    reason = _netns_unavailable()
    if reason is None:
        return
    if os.environ.get("CP_TEST_REQUIRE_NETNS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session", autouse=True)
def _final_sweep() -> Iterator[None]:
    """After the chaos suite: no ``cpt-`` namespace may remain (removed and reported)."""
    yield
    if _netns_unavailable() is not None:
        return
    left = [n for n in _netns() if n.startswith(PREFIX)]
    for name in left:
        run(["ip", "netns", "del", name])
    assert not left, f"chaos tests left namespaces behind: {left}"


def _netns() -> list[str]:
    res = run(["ip", "netns", "list"])
    return [line.split()[0] for line in res.out.splitlines() if line.strip()]


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "chaos-state"


@pytest.fixture
def chaos_settings() -> ChaosSettings:
    return ChaosSettings(ttl_grace_s=1.0, watchdog_poll_s=0.05)


def _topology(state_dir: Path) -> Iterator[Topology]:
    topology = create_pair(prefix=PREFIX, state_dir=state_dir, ttl_s=600)
    yield topology
    topology.destroy()
    deadline = time.monotonic() + 5
    while any(n in _netns() for n in (topology.client, topology.server)):
        assert time.monotonic() < deadline, "namespaces survived their topology"
        time.sleep(0.05)


@pytest.fixture
def topo(netns_ok: None, tmp_path: Path) -> Iterator[Topology]:
    yield from _topology(tmp_path / "topo-state")


@pytest.fixture(scope="module")
def shared_topo(netns_ok: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    """One topology for a module whose tests leave it as they found it."""
    yield from _topology(tmp_path_factory.mktemp("topo-state"))


class Procs:
    """Processes a test starts inside namespaces; all killed at the end."""

    def __init__(self) -> None:
        self.items: list[subprocess.Popen[str]] = []

    def start(self, netns: str, *args: str, ready: bool = True) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, sys.executable, NETPROBE, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.items.append(proc)
        if ready:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        return proc

    def value(self, netns: str, *args: str, timeout: float = 60) -> float:
        out = subprocess.run(
            ["ip", "netns", "exec", netns, sys.executable, NETPROBE, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
        return float(out.stdout.split()[-1])

    def stop(self) -> None:
        for proc in self.items:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


@pytest.fixture
def procs() -> Iterator[Procs]:
    p = Procs()
    yield p
    p.stop()


def wait_for(check: Any, timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
