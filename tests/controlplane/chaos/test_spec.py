"""The fault and target grammar: what parses, what it means for netem, and what is refused
(with one line naming the problem) before anything touches the system."""

from __future__ import annotations

import pytest

from controlplane.chaos import NetFault
from controlplane.chaos import ProcessFault
from controlplane.chaos import parse_fault
from controlplane.chaos import parse_target
from controlplane.chaos import plan
from controlplane.chaos._probe import Capabilities
from controlplane.domain import ValidationError

NO_NETEM = Capabilities(
    netem=False, prio=False, htb=True, tbf=True, nft_numgen=True, nft_redirect=True, unshare=True
)
NETEM = Capabilities(
    netem=True, prio=True, htb=True, tbf=True, nft_numgen=True, nft_redirect=True, unshare=True
)


def test_full_netem_spec_round_trips_to_tc_arguments() -> None:
    fault = parse_fault(
        "delay 50ms 10ms 25% distribution normal loss 1% duplicate 1% corrupt 0.1% "
        "reorder 25% 50% rate 1mbit"
    )
    assert isinstance(fault, NetFault)
    assert (
        fault.netem_args(10000)
        == (
            "limit 10000 delay 50ms 10ms 25% distribution normal loss random 1% duplicate 1% "
            "corrupt 0.1% reorder 25% 50% rate 1000000bit"
        ).split()
    )


def test_gemodel_and_partition() -> None:
    gemodel = parse_fault("loss gemodel 1% 10% 70% 0.1%")
    assert isinstance(gemodel, NetFault)
    assert gemodel.netem_args(1000)[2:] == ["loss", "gemodel", "1%", "10%", "70%", "0.1%"]
    part = parse_fault("partition")
    assert isinstance(part, NetFault) and part.partition and part.drops


@pytest.mark.parametrize(
    ("text", "action", "workers"),
    [("pause", "pause", 1), ("crash", "crash", 1), ("cpu-hog 3", "cpu-hog", 3)],
)
def test_process_faults(text: str, action: str, workers: int) -> None:
    fault = parse_fault(text)
    assert isinstance(fault, ProcessFault)
    assert (fault.action, fault.workers) == (action, workers)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "delay",
        "delay fast",
        "delay -5ms",
        "loss 150%",
        "jitter 5ms",
        "reorder 25%",
        "rate 10",
        "rate 1bit",
        "delay 5ms delay 6ms",
        "pause now",
        "cpu-hog 0",
        "distribution gaussian",
        "loss 5% partition",
    ],
)
def test_bad_specs_fail_with_one_line(text: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_fault(text)
    assert err.value.field == "fault"
    assert "\n" not in str(err.value) and str(err.value).startswith("fault: ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("netns:cpt-a", "netns:cpt-a"),
        ("netns:cpt-a/veth0:8000", "netns:cpt-a/veth0:8000"),
        ("host:eth9:443", "host:eth9:443"),
        ("pid:1234", "pid:1234"),
    ],
)
def test_targets(text: str, expected: str) -> None:
    assert str(parse_target(text)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "eth0",
        "netns:",
        "netns:a;rm -rf /",
        "host:averyveryverylongname0",
        "pid:1",
        "x:y",
        "netns:a:99999",
        "netns:$(id)",
    ],
)
def test_bad_targets(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_target(text)


def test_plan_with_netem_uses_netem_for_everything() -> None:
    fault = parse_fault("delay 50ms loss 1% rate 1mbit")
    assert isinstance(fault, NetFault)
    assert plan(fault, NETEM, port=None) == {"network": "netem"}
    assert plan(fault, NETEM, port=8000) == {"network": "htb+u32+netem"}


def test_plan_without_netem_falls_back_per_fault() -> None:
    fault = parse_fault("delay 50ms 10ms loss 1% rate 1mbit")
    assert isinstance(fault, NetFault)
    assert plan(fault, NO_NETEM, port=8000) == {
        "delay": "proxy+nft-redirect",
        "loss": "nft-numgen",
        "rate": "htb+u32",
    }
    rate = parse_fault("rate 2mbit")
    assert isinstance(rate, NetFault)
    assert plan(rate, NO_NETEM, port=None) == {"rate": "tbf"}


@pytest.mark.parametrize(
    ("text", "port", "needle"),
    [
        ("duplicate 1%", 8000, "duplicate needs sch_netem"),
        ("loss gemodel 1%", None, "gemodel needs sch_netem"),
        ("delay 50ms", None, "needs a port"),
    ],
)
def test_plan_refuses_what_has_no_fallback(text: str, port: int | None, needle: str) -> None:
    fault = parse_fault(text)
    assert isinstance(fault, NetFault)
    with pytest.raises(ValidationError, match=needle):
        plan(fault, NO_NETEM, port=port)
