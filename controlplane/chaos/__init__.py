"""Fault injection that always cleans up (layer 1: imports only settings and domain).

Network faults with ``tc netem`` where the kernel has it, and per fault a fallback where it
does not (tbf / htb for rate, nftables ``numgen`` for loss, a delaying proxy for delay);
process faults (pause, crash, CPU hog); throwaway namespace topologies. Every change is
recorded before it is made and a watchdog outside the injecting process enforces the TTL.
"""

from controlplane.chaos._commands import qdisc_stats
from controlplane.chaos._commands import root_qdisc
from controlplane.chaos._experiment import Outcome
from controlplane.chaos._experiment import abort
from controlplane.chaos._experiment import hold
from controlplane.chaos._experiment import run_fault
from controlplane.chaos._inject import Injection
from controlplane.chaos._inject import Injector
from controlplane.chaos._inject import plan
from controlplane.chaos._inject import sweep_all
from controlplane.chaos._netns import Topology
from controlplane.chaos._netns import create_pair
from controlplane.chaos._probe import UNKNOWN_KIND
from controlplane.chaos._probe import Capabilities
from controlplane.chaos._probe import probe
from controlplane.chaos._spec import Fault
from controlplane.chaos._spec import NetFault
from controlplane.chaos._spec import ProcessFault
from controlplane.chaos._spec import Target
from controlplane.chaos._spec import parse_fault
from controlplane.chaos._spec import parse_target
from controlplane.chaos._watchdog import cleanup
from controlplane.chaos._watchdog import sweep

__all__ = [
    "UNKNOWN_KIND",
    "Capabilities",
    "Fault",
    "Injection",
    "Injector",
    "NetFault",
    "Outcome",
    "ProcessFault",
    "Target",
    "Topology",
    "abort",
    "cleanup",
    "create_pair",
    "hold",
    "parse_fault",
    "parse_target",
    "plan",
    "probe",
    "qdisc_stats",
    "root_qdisc",
    "run_fault",
    "sweep",
    "sweep_all",
]
