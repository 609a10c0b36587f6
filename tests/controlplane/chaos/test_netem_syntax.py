"""Every netem command we generate goes through the real ``tc`` parser, inside a throwaway
namespace. Exit 0 (the kernel has sch_netem) or exit 2 with "Specified qdisc kind is
unknown" (it parsed; the kernel lacks the module) pass; exit 1 is a syntax error and fails."""

from __future__ import annotations

import pytest

from controlplane.chaos import UNKNOWN_KIND
from controlplane.chaos import NetFault
from controlplane.chaos import Topology
from controlplane.chaos import parse_fault
from controlplane.chaos._commands import htb_class
from controlplane.chaos._commands import htb_root
from controlplane.chaos._commands import in_netns
from controlplane.chaos._commands import netem_neutral
from controlplane.chaos._commands import netem_qdisc
from controlplane.chaos._commands import run

SPECS = [
    "delay 50ms",
    "delay 50ms 10ms",
    "delay 50ms 10ms 25%",
    "delay 100ms 10ms 25% distribution normal",
    "delay 20ms 5ms distribution pareto",
    "delay 20ms 5ms distribution paretonormal",
    "delay 20ms 5ms distribution uniform",
    "loss 1%",
    "loss random 0.3% 25%",
    "loss gemodel 1% 10% 70% 0.1%",
    "loss gemodel 5%",
    "duplicate 1%",
    "duplicate 1% 10%",
    "corrupt 0.1%",
    "delay 10ms reorder 25% 50%",
    "delay 10ms reorder 25% gap 5",
    "rate 1mbit",
    "rate 500kbit limit 20000",
    "partition",
    "delay 50ms 10ms 25% distribution normal loss 1% duplicate 1% corrupt 0.1% "
    "reorder 25% 50% rate 1mbit",
]

pytestmark = pytest.mark.netns


def _assert_parsed(shared_topo: Topology, argv: list[str], *kernel_answers: str) -> None:
    res = run(in_netns(shared_topo.server, argv))
    if res.rc == 0:
        return
    answers = (UNKNOWN_KIND, *kernel_answers)
    ok = res.rc == 2 and any(a in res.err for a in answers)
    assert ok, f"{' '.join(argv)} -> {res.rc}: {res.err}"


@pytest.mark.parametrize("spec", SPECS)
def test_generated_netem_commands_parse(shared_topo: Topology, spec: str) -> None:
    fault = parse_fault(spec)
    assert isinstance(fault, NetFault)
    dev = shared_topo.server_dev
    _assert_parsed(shared_topo, netem_qdisc(dev, fault, parent="root", handle="c4a0", limit=10000))
    run(in_netns(shared_topo.server, ["tc", "qdisc", "del", "dev", dev, "root"]))
    # The port-scoped form: netem as the child of an HTB class.
    assert run(in_netns(shared_topo.server, htb_root(dev, handle="c4a0"))).ok
    assert run(
        in_netns(shared_topo.server, htb_class(dev, handle="c4a0", minor=2, rate_bps=10**9))
    ).ok
    _assert_parsed(
        shared_topo, netem_qdisc(dev, fault, parent="c4a0:2", handle="c4a1", limit=10000)
    )
    # Without sch_netem there is no qdisc to change: the kernel says so after tc parsed it.
    _assert_parsed(
        shared_topo, netem_neutral(dev, parent="c4a0:2", handle="c4a1"), "Qdisc not found"
    )
    run(in_netns(shared_topo.server, ["tc", "qdisc", "del", "dev", dev, "root"]))


def test_the_check_tells_a_syntax_error_from_a_missing_module(shared_topo: Topology) -> None:
    bad = ["tc", "qdisc", "add", "dev", shared_topo.server_dev, "root", "netem", "delai", "5ms"]
    res = run(in_netns(shared_topo.server, bad))
    assert res.rc == 1
