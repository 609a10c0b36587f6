"""Which processes a ``pid:`` fault may touch: only those of a registered engine.

Without this check an admin could SIGSTOP or SIGKILL any process the server's user can
signal (a database, sshd). A process belongs to an engine when it, or one of its ancestors,
holds a listening TCP socket on the engine URL's port, bound to the URL's address or to a
wildcard: the engine's server and every worker it started.

The sockets are read from ``/proc/<pid>/net/tcp{,6}`` (the process's own network namespace,
so an engine inside a namespace is found too) and matched to the process through the socket
inodes in ``/proc/<pid>/fd``. A process whose ``fd`` directory cannot be read (another user's,
without privileges) holds no socket as far as this check can see: it is refused.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from controlplane.domain import ValidationError

_LISTEN = "0A"
_PROC = Path("/proc")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class EngineEndpoint:
    name: str
    port: int
    addresses: frozenset[IPAddress]


def endpoint(name: str, url: str) -> EngineEndpoint | None:
    """Where the engine's server listens, from its URL (None: no usable host or port)."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    host = parts.hostname
    if not host:
        return None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return None
    addresses = frozenset(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos)
    return EngineEndpoint(name, port, addresses)


def _socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    try:
        entries = list((_PROC / str(pid) / "fd").iterdir())
    except OSError:
        return inodes
    for entry in entries:
        try:
            link = os.readlink(entry)
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[len("socket:[") : -1])
    return inodes


def _address(hex_ip: str) -> IPAddress:
    raw = bytes.fromhex(hex_ip)
    if len(raw) == 4:
        return ipaddress.IPv4Address(raw[::-1])
    # IPv6: four 32-bit words, each in host (little-endian) byte order.
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    address = ipaddress.IPv6Address(words)
    return address.ipv4_mapped or address


def listening(pid: int) -> set[tuple[IPAddress, int]]:
    """(address, port) of the TCP sockets ``pid`` holds in LISTEN state."""
    inodes = _socket_inodes(pid)
    found: set[tuple[IPAddress, int]] = set()
    if not inodes:
        return found
    for table in ("tcp", "tcp6"):
        try:
            lines = (_PROC / str(pid) / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != _LISTEN or fields[9] not in inodes:
                continue
            hex_ip, _, hex_port = fields[1].partition(":")
            found.add((_address(hex_ip), int(hex_port, 16)))
    return found


def lineage(pid: int) -> list[int]:
    """``pid`` and its ancestors, nearest first, without init (pid 1)."""
    chain: list[int] = []
    current = pid
    while current > 1 and current not in chain:
        chain.append(current)
        try:
            stat = (_PROC / str(current) / "stat").read_text()
        except OSError:
            break
        # The command name (field 2) may hold spaces and parentheses: split after the last ")".
        current = int(stat.rpartition(")")[2].split()[1])
    return chain


def _serves(sockets: Iterable[tuple[IPAddress, int]], engine: EngineEndpoint) -> bool:
    for address, port in sockets:
        if port == engine.port and (address.is_unspecified or address in engine.addresses):
            return True
    return False


def owning_engine(pid: int, engines: Sequence[EngineEndpoint]) -> str:
    """The name of the registered engine ``pid`` belongs to.

    Raises:
        ValidationError: it belongs to none of ``engines``.
    """
    for ancestor in lineage(pid):
        sockets = listening(ancestor)
        for engine in engines:
            if _serves(sockets, engine):
                return engine.name
    names = ", ".join(e.name for e in engines) or "none registered"
    raise ValidationError(
        f"target: process {pid} does not belong to a registered engine ({names}): a pid: "
        "fault may only touch an engine's server (the process listening on its URL's port) "
        "or a process it started",
        field="target",
    )
