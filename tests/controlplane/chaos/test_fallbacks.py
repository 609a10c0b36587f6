"""The fallbacks do what they claim, measured with real traffic between two namespaces over
a veth pair: tbf and htb cap the rate, nftables ``numgen`` drops the asked share, the proxy
adds the delay. On a kernel with sch_netem the same faults run through netem instead; the
measurements hold either way."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from controlplane.chaos import Injector
from controlplane.chaos import Topology
from controlplane.chaos import parse_fault
from controlplane.chaos import parse_target
from controlplane.chaos import root_qdisc
from controlplane.chaos._commands import in_netns
from controlplane.chaos._commands import run
from controlplane.domain import ConflictError
from controlplane.settings import ChaosSettings
from tests.controlplane.chaos.conftest import Procs

pytestmark = pytest.mark.netns


def _inject(s: ChaosSettings, d: Path, target: str, fault: str, key: str = "t1") -> object:
    return Injector(s, d).inject(key, parse_target(target), parse_fault(fault), ttl_s=60)


def test_rate_cap_on_the_whole_interface(
    topo: Topology, procs: Procs, chaos_settings: ChaosSettings, state_dir: Path
) -> None:
    procs.start(topo.server, "sink", "9000")
    size = 1_000_000
    fast = procs.value(topo.client, "send", topo.server_ip, "9000", str(size))
    inj = Injector(chaos_settings, state_dir).inject(
        "rate", parse_target(f"netns:{topo.client}"), parse_fault("rate 8mbit"), ttl_s=60
    )
    try:
        slow = procs.value(topo.client, "send", topo.server_ip, "9000", str(size))
        counters = inj.counters()
    finally:
        inj.remove()
    mbit = size * 8 / slow / 1e6
    assert 4 < mbit <= 8 * 1.2, f"capped at 8mbit, measured {mbit:.1f} mbit/s"
    assert slow > 5 * fast
    tbf = [q for q in counters["tc"] if q["kind"] in ("tbf", "netem")]
    assert tbf and tbf[0]["bytes"] >= size
    assert (root_qdisc(topo.client, topo.client_dev) or {}).get("kind") == "noqueue"


def test_rate_cap_on_one_port_leaves_other_ports_alone(
    topo: Topology, procs: Procs, chaos_settings: ChaosSettings, state_dir: Path
) -> None:
    procs.start(topo.server, "sink", "9000")
    procs.start(topo.server, "sink", "9001")
    size = 500_000
    inj = Injector(chaos_settings, state_dir).inject(
        "port", parse_target(f"netns:{topo.client}:9000"), parse_fault("rate 4mbit"), ttl_s=60
    )
    try:
        capped = procs.value(topo.client, "send", topo.server_ip, "9000", str(size))
        free = procs.value(topo.client, "send", topo.server_ip, "9001", str(size))
        assert inj.mechanisms in ({"rate": "htb+u32"}, {"network": "htb+u32+netem"})
    finally:
        inj.remove()
    assert size * 8 / capped / 1e6 <= 4 * 1.25
    assert free < capped / 5


def test_nft_loss_drops_about_the_share_asked(
    topo: Topology, procs: Procs, chaos_settings: ChaosSettings, state_dir: Path
) -> None:
    sink = procs.start(topo.server, "udp-sink", "9100", "4")
    inj = Injector(chaos_settings, state_dir).inject(
        "loss", parse_target(f"netns:{topo.client}:9100"), parse_fault("loss 20%"), ttl_s=60
    )
    try:
        sent = int(procs.value(topo.client, "udp-send", topo.server_ip, "9100", "3000"))
        counters = inj.counters()
    finally:
        inj.remove()
    assert sink.stdout is not None
    got = int(sink.stdout.readline())
    lost = 1 - got / sent
    assert 0.15 < lost < 0.25, f"asked 20 % loss, measured {lost:.1%}"
    if "loss" in inj.mechanisms:
        dropped = sum(c["packets"] for c in counters["nft"] if c["chain"] == "egress")
        assert dropped == sent - got


def test_delay_proxy_adds_the_delay(
    topo: Topology, procs: Procs, chaos_settings: ChaosSettings, state_dir: Path
) -> None:
    procs.start(topo.server, "echo", "9200")
    base = procs.value(topo.client, "rtt", topo.server_ip, "9200", "20")
    inj = Injector(chaos_settings, state_dir).inject(
        "delay", parse_target(f"netns:{topo.server}:9200"), parse_fault("delay 50ms"), ttl_s=60
    )
    try:
        delayed = procs.value(topo.client, "rtt", topo.server_ip, "9200", "10")
        time.sleep(0.3)  # the proxy writes its counters every 0.2 s
        counters = inj.counters()
    finally:
        log = inj.remove()
    assert 50 <= delayed - base < 100, f"base {base:.1f} ms, with fault {delayed:.1f} ms"
    if "delay" in inj.mechanisms:
        assert counters["proxy"]["chunks_delayed"] >= 10
        assert any("proxy" in line for line in log)
        after = procs.value(topo.client, "rtt", topo.server_ip, "9200", "10")
        assert after < base + 20


def test_a_root_qdisc_we_do_not_own_is_never_replaced(
    topo: Topology, chaos_settings: ChaosSettings, state_dir: Path
) -> None:
    dev = topo.server_dev
    mine = ["tc", "qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "1"]
    assert run(in_netns(topo.server, mine)).ok
    with pytest.raises(ConflictError, match="we do not own"):
        _inject(chaos_settings, state_dir, f"netns:{topo.server}", "rate 1mbit")
    root = root_qdisc(topo.server, dev)
    assert root is not None and (root["kind"], root["handle"]) == ("htb", "1:")
    assert not list(state_dir.glob("*.json"))


def test_a_second_fault_on_the_same_device_is_refused(
    topo: Topology, chaos_settings: ChaosSettings, state_dir: Path
) -> None:
    first = Injector(chaos_settings, state_dir).inject(
        "a", parse_target(f"netns:{topo.server}"), parse_fault("rate 10mbit"), ttl_s=60
    )
    try:
        with pytest.raises(ConflictError, match="already carries a chaos fault"):
            _inject(chaos_settings, state_dir, f"netns:{topo.server}", "rate 1mbit", key="b")
    finally:
        first.remove()
    assert root_qdisc(topo.server, topo.server_dev)["kind"] == "noqueue"  # type: ignore[index]
