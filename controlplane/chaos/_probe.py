"""What this kernel can do, found out by trying it where nothing real can be hurt.

Each check runs in a fresh unnamed network namespace (``unshare -n``): it holds only ``lo``,
nobody's traffic, and the kernel frees it when the check exits, even after SIGKILL. A missing
``sch_netem`` shows as exit 2 with "Specified qdisc kind is unknown" after ``tc`` accepted the
syntax; that is the signal to fall back. Results are cached per namespace for the process.
"""

from __future__ import annotations

import threading
from dataclasses import asdict
from dataclasses import dataclass

from controlplane.chaos._commands import run

UNKNOWN_KIND = "Specified qdisc kind is unknown"

_QDISCS = {
    "netem": ["netem", "delay", "1ms"],
    "prio": ["prio"],
    "htb": ["htb", "default", "1"],
    "tbf": ["tbf", "rate", "1mbit", "burst", "32kbit", "latency", "50ms"],
}
_NFT_NUMGEN = (
    "table inet cpprobe {\n  chain c {\n    type filter hook output priority 0;\n"
    "    tcp dport 9 numgen random mod 100 < 10 counter drop\n  }\n}\n"
)
_NFT_NAT = (
    "table inet cpprobe {\n  chain c {\n    type nat hook prerouting priority dstnat;\n"
    "    tcp dport 9 redirect to :10\n  }\n}\n"
)


@dataclass(frozen=True)
class Capabilities:
    netem: bool
    prio: bool
    htb: bool
    tbf: bool
    nft_numgen: bool
    nft_redirect: bool
    unshare: bool

    def as_dict(self) -> dict[str, bool]:
        return asdict(self)


_cache: dict[str | None, Capabilities] = {}
_lock = threading.Lock()


def qdisc_available(kind: str) -> bool:
    res = run(["unshare", "-n", "tc", "qdisc", "add", "dev", "lo", "root", *_QDISCS[kind]])
    return res.ok


def probe(netns: str | None = None, *, refresh: bool = False) -> Capabilities:
    """Probe once per namespace key and remember it (modules do not come and go mid-run)."""
    with _lock:
        if not refresh and netns in _cache:
            return _cache[netns]
    unshare = run(["unshare", "-n", "true"]).ok
    found = {kind: unshare and qdisc_available(kind) for kind in _QDISCS}
    numgen = unshare and run(["unshare", "-n", "nft", "-f", "-"], stdin=_NFT_NUMGEN).ok
    nat = unshare and run(["unshare", "-n", "nft", "-f", "-"], stdin=_NFT_NAT).ok
    caps = Capabilities(
        netem=found["netem"],
        prio=found["prio"],
        htb=found["htb"],
        tbf=found["tbf"],
        nft_numgen=numgen,
        nft_redirect=nat,
        unshare=unshare,
    )
    with _lock:
        _cache[netns] = caps
    return caps
