"""Argument-list builders for ``ip``, ``tc`` and ``nft``, and the one place that runs them.

Commands are lists, never shell strings: an interface or namespace name reaches the kernel as
one argument whatever it contains, and names are validated (``_spec``) before they get here.
Commands inside a namespace go through ``ip netns exec`` so the same builders serve the host
and every namespace.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from typing import Any

from controlplane.chaos._spec import NetFault

TIMEOUT_S = 10.0
# Root qdiscs the kernel installs by itself: replacing one of these takes nothing from anyone.
DEFAULT_ROOTS = ("noqueue", "pfifo_fast", "fq_codel", "mq", "pfifo", "fq", "noop")


@dataclass(frozen=True)
class Result:
    argv: list[str]
    rc: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.rc == 0


def in_netns(netns: str | None, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv] if netns else list(argv)


def run(argv: list[str], *, stdin: str | None = None, timeout: float = TIMEOUT_S) -> Result:
    """Run one command; never raises for a non-zero exit (callers decide what it means)."""
    try:
        done = subprocess.run(
            argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        return Result(argv, 127, "", str(exc))
    except subprocess.TimeoutExpired:
        return Result(argv, 124, "", f"timed out after {timeout:g} s")
    return Result(argv, done.returncode, done.stdout, done.stderr.strip())


def netem_qdisc(dev: str, fault: NetFault, *, parent: str, handle: str, limit: int) -> list[str]:
    """``tc qdisc add dev DEV (root|parent P) handle H: netem ...``."""
    where = ["root"] if parent == "root" else ["parent", parent]
    return ["tc", "qdisc", "add", "dev", dev, *where, "handle", f"{handle}:", "netem"] + (
        fault.netem_args(limit)
    )


def netem_neutral(dev: str, *, parent: str, handle: str) -> list[str]:
    """Turn a netem qdisc into a no-op in place, so its later delete drops nothing extra."""
    where = ["root"] if parent == "root" else ["parent", parent]
    return ["tc", "qdisc", "change", "dev", dev, *where, "handle", f"{handle}:", "netem"] + [
        "delay",
        "0ms",
    ]


def tbf_qdisc(dev: str, *, handle: str, rate_bps: int, op: str = "add") -> list[str]:
    # burst: at least one 10 ms worth of the rate and never below a few MTUs, or TBF drops
    # everything bigger than the bucket; latency bounds the queue (tc-tbf(8)).
    burst = max(rate_bps // 8 // 100, 16 * 1514)
    return [
        "tc",
        "qdisc",
        op,
        "dev",
        dev,
        "root",
        "handle",
        f"{handle}:",
        "tbf",
        "rate",
        f"{rate_bps}bit",
        "burst",
        str(burst),
        "latency",
        "100ms",
    ]


def htb_root(dev: str, *, handle: str) -> list[str]:
    return ["tc", "qdisc", "add", "dev", dev, "root", "handle", f"{handle}:", "htb"] + [
        "default",
        "1",
    ]


def htb_class(dev: str, *, handle: str, minor: int, rate_bps: int, op: str = "add") -> list[str]:
    rate = f"{rate_bps}bit"
    return ["tc", "class", op, "dev", dev, "parent", f"{handle}:"] + [
        "classid",
        f"{handle}:{minor}",
        "htb",
        "rate",
        rate,
        "ceil",
        rate,
    ]


def u32_port_filters(dev: str, *, handle: str, port: int, minor: int) -> list[list[str]]:
    """Both directions of one TCP/UDP port (client requests and server replies) to a class."""
    return [
        ["tc", "filter", "add", "dev", dev, "parent", f"{handle}:", "protocol", "ip"]
        + ["prio", "1", "u32", "match", "ip", field, str(port), "0xffff"]
        + ["flowid", f"{handle}:{minor}"]
        for field in ("dport", "sport")
    ]


def qdisc_del(dev: str, *, handle: str) -> list[str]:
    """Delete the root only if it carries our handle (the kernel checks: 'Invalid handle')."""
    return ["tc", "qdisc", "del", "dev", dev, "root", "handle", f"{handle}:"]


def root_qdisc(netns: str | None, dev: str) -> dict[str, Any] | None:
    """The root qdisc of ``dev`` as ``tc -j`` prints it, or ``None`` if the device is absent."""
    res = run(in_netns(netns, ["tc", "-j", "qdisc", "show", "dev", dev, "root"]))
    if not res.ok:
        return None
    try:
        rows = json.loads(res.out or "[]")
    except json.JSONDecodeError:
        return None
    for row in rows:
        if row.get("root"):
            return dict(row)
    return rows[0] if rows else {"kind": "noqueue", "handle": "0:"}


def qdisc_stats(netns: str | None, dev: str) -> list[dict[str, Any]]:
    """``tc -s -j qdisc show``: bytes, packets, drops, overlimits per qdisc (proof it ran)."""
    res = run(in_netns(netns, ["tc", "-s", "-j", "qdisc", "show", "dev", dev]))
    try:
        rows = json.loads(res.out) if res.ok and res.out else []
    except json.JSONDecodeError:
        rows = []
    keep = ("kind", "handle", "parent", "bytes", "packets", "drops", "overlimits", "requeues")
    return [{k: r[k] for k in keep if k in r} for r in rows]


def nft_ruleset(
    table: str,
    *,
    dev: str | None,
    port: int | None,
    drop_per_10k: int | None,
    redirect_to: int | None,
) -> str:
    """An ``nft -f`` script creating our table: random drop on egress, and/or a redirect of one
    server port to the delaying proxy. The table is ours alone, so removing it removes exactly
    what we added."""
    lines = [f"table inet {table} {{"]
    if drop_per_10k is not None:
        lines.append("  chain egress {")
        lines.append("    type filter hook postrouting priority 0; policy accept;")
        match = f'oifname "{dev}" ' if dev else ""
        chance = f"numgen random mod 10000 < {drop_per_10k} " if drop_per_10k < 10000 else ""
        if port is None:
            lines.append(f"    {match}{chance}counter drop")
        else:
            for field in ("dport", "sport"):
                lines.append(f"    {match}meta l4proto {{ tcp, udp }} th {field} {port} ")
                lines[-1] += f"{chance}counter drop"
        lines.append("  }")
    if redirect_to is not None and port is not None:
        lines.append("  chain divert {")
        lines.append("    type nat hook prerouting priority dstnat; policy accept;")
        match = f'iifname "{dev}" ' if dev else ""
        lines.append(f"    {match}tcp dport {port} counter redirect to :{redirect_to}")
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def nft_counters(netns: str | None, table: str) -> list[dict[str, Any]]:
    """Packets and bytes of every counter in our table."""
    res = run(in_netns(netns, ["nft", "-j", "list", "table", "inet", table]))
    if not res.ok:
        return []
    try:
        items = json.loads(res.out).get("nftables", [])
    except json.JSONDecodeError:
        return []
    out = []
    for item in items:
        rule = item.get("rule")
        if not rule:
            continue
        for expr in rule.get("expr", []):
            if "counter" in expr:
                c = expr["counter"]
                out.append({"chain": rule.get("chain"), **c})
    return out
