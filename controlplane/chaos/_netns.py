"""Throwaway topologies: two network namespaces joined by a veth pair.

Load runs in one namespace, the engine in the other, and faults go on the veth ends: the
host's own interfaces are never touched, both veth ends are created directly inside the
namespaces, and a fault on a veth end dies with its namespace. Namespaces are recorded in a
state file before they are created and a watchdog deletes them if their creator dies, so a
killed test or benchmark leaves nothing behind.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controlplane.chaos._commands import in_netns
from controlplane.chaos._commands import run
from controlplane.chaos._spec import check_netns_name
from controlplane.chaos._watchdog import cleanup
from controlplane.chaos._watchdog import proc_start
from controlplane.chaos._watchdog import spawn
from controlplane.chaos._watchdog import update_state
from controlplane.chaos._watchdog import write_state
from controlplane.domain import ConflictError


@dataclass(frozen=True)
class Topology:
    """``client`` and ``server`` namespaces; ``server_ip`` is reachable from ``client``."""

    key: str
    client: str
    server: str
    client_dev: str
    server_dev: str
    client_ip: str
    server_ip: str
    state_path: Path

    def exec(self, netns: str, argv: list[str], **popen: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside one of the two namespaces."""
        return subprocess.Popen(in_netns(netns, argv), **popen)

    def destroy(self) -> list[str]:
        return cleanup(self.state_path)


def create_pair(
    *, prefix: str, state_dir: Path, ttl_s: float = 3600.0, subnet: str = "10.231.0"
) -> Topology:
    """Create ``<prefix><id>-c`` and ``<prefix><id>-s`` joined by veth, addresses .1 and .2/30.

    Addresses live only inside the two namespaces, so any subnet works; the default is one
    unlikely to be routed anywhere.

    Raises:
        ConflictError: a command failed (what was created has been removed).
    """
    key = f"topo-{secrets.token_hex(3)}"
    tag = key.removeprefix("topo-")
    client = check_netns_name(f"{prefix}{tag}-c")
    server = check_netns_name(f"{prefix}{tag}-s")
    client_dev, server_dev = f"cv{tag}c", f"cv{tag}s"
    client_ip, server_ip = f"{subnet}.1", f"{subnet}.2"
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / f"{key}.json"
    me = os.getpid()
    state: dict[str, Any] = {
        "key": key,
        "owner_pid": me,
        "owner_start": proc_start(me),
        "deadline": time.time() + ttl_s,
        "undo": [{"kind": "netns", "name": client}, {"kind": "netns", "name": server}],
    }
    write_state(path, state)
    wd = spawn(path)
    watchdog = {"watchdog_pid": wd, "watchdog_start": proc_start(wd)}
    update_state(path, lambda st: st.update(watchdog))
    steps: list[list[str]] = [
        ["ip", "netns", "add", client],
        ["ip", "netns", "add", server],
        ["ip", "link", "add", client_dev, "netns", client, "type", "veth"]
        + ["peer", "name", server_dev, "netns", server],
    ]
    for ns, dev, ip in ((client, client_dev, client_ip), (server, server_dev, server_ip)):
        steps += [
            in_netns(ns, ["ip", "link", "set", "lo", "up"]),
            in_netns(ns, ["ip", "addr", "add", f"{ip}/30", "dev", dev]),
            in_netns(ns, ["ip", "link", "set", dev, "up"]),
        ]
    for argv in steps:
        res = run(argv)
        if not res.ok:
            cleanup(path)
            raise ConflictError(f"topology: {' '.join(argv[:4])} failed: {res.err}")
    return Topology(key, client, server, client_dev, server_dev, client_ip, server_ip, path)
