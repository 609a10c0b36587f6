"""Apply, measure and remove one fault, with every change recorded before it is made.

Ownership rules (so a chaos run can never break what it did not build):
- qdiscs: we add a root only where the kernel's default root sits (handle ``0:``), always with
  the reserved handle, never ``replace``; removal names the handle, so the kernel refuses to
  delete anyone else's root. A half-built tree is undone at once.
- nftables: one table of our own per namespace; we create it, fill it, and delete it whole.
- processes: helpers (proxy, CPU hogs) run in their own sessions and are killed by pid plus
  start time; stopped processes are continued the same way.
All of it is written to the state file first, and a watchdog process enforces the TTL.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from controlplane.chaos._commands import DEFAULT_ROOTS
from controlplane.chaos._commands import htb_class
from controlplane.chaos._commands import htb_root
from controlplane.chaos._commands import in_netns
from controlplane.chaos._commands import netem_neutral
from controlplane.chaos._commands import netem_qdisc
from controlplane.chaos._commands import nft_counters
from controlplane.chaos._commands import nft_ruleset
from controlplane.chaos._commands import qdisc_stats
from controlplane.chaos._commands import root_qdisc
from controlplane.chaos._commands import run
from controlplane.chaos._commands import tbf_qdisc
from controlplane.chaos._commands import u32_port_filters
from controlplane.chaos._probe import Capabilities
from controlplane.chaos._probe import probe
from controlplane.chaos._spec import Fault
from controlplane.chaos._spec import NetFault
from controlplane.chaos._spec import ProcessFault
from controlplane.chaos._spec import Target
from controlplane.chaos._watchdog import cleanup
from controlplane.chaos._watchdog import proc_start
from controlplane.chaos._watchdog import read_state
from controlplane.chaos._watchdog import spawn
from controlplane.chaos._watchdog import sweep
from controlplane.chaos._watchdog import update_state
from controlplane.chaos._watchdog import write_state
from controlplane.domain import ConflictError
from controlplane.domain import ValidationError
from controlplane.settings import ChaosSettings

UNLIMITED_BPS = 10_000_000_000
# How long a removed proxy may finish replies in flight before its connections are cut.
PROXY_DRAIN_S = 2.0
#: How long the delaying proxy may take to say it is ready (a Python start-up in a namespace
#: on a loaded host).
PROXY_READY_S = 10.0
#: Added to the watchdog's deadline while a fault is being set up. The TTL proper starts
#: when set-up ends (``_arm``); until then a slow helper must not be cut by a deadline that
#: was counted from before it started. A dead injector is still cleaned up at once.
SETUP_ALLOWANCE_S = 3 * PROXY_READY_S
_HOG = "while True:\n    pass\n"


@dataclass
class Injection:
    """A fault that is in place; ``remove`` (or the watchdog) takes it away."""

    key: str
    target: Target
    fault: Fault
    mechanisms: dict[str, str]
    state_path: Path
    netns: str | None = None
    device: str | None = None
    table: str | None = None
    proxy_stats: Path | None = None
    watchdog_pid: int | None = None
    inject_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    # Helpers we started (proxy, CPU hogs): reaped by ``remove`` once undo has killed them.
    children: list[subprocess.Popen[Any]] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.state_path.exists()

    def counters(self) -> dict[str, Any]:
        """``tc -s`` and nft counters and the proxy's own: the proof the fault was in place."""
        out: dict[str, Any] = {}
        if self.device is not None:
            out["tc"] = qdisc_stats(self.netns, self.device)
        if self.table is not None:
            out["nft"] = nft_counters(self.netns, self.table)
        if self.proxy_stats is not None and self.proxy_stats.exists():
            out["proxy"] = read_state(self.proxy_stats) or {}
        return out

    def remove(self) -> list[str]:
        """Undo everything (idempotent; a no-op when the watchdog or an abort got there first)."""
        log = cleanup(self.state_path)
        for proc in self.children:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                log.append(f"pid {proc.pid} still running after cleanup")
        return log


def netns_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


def _devices(netns: str | None) -> list[str]:
    res = run(in_netns(netns, ["ip", "-o", "link", "show"]))
    names = []
    for line in res.out.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.append(parts[1].strip().split("@")[0])
    return names


def resolve(target: Target, settings: ChaosSettings) -> tuple[str | None, str | None]:
    """(namespace, device) of a network target, after every check that can fail early.

    Raises:
        ValidationError: unknown namespace, device not found, interface not allowlisted.
    """
    if target.kind == "pid":
        return None, None
    if target.kind == "host":
        assert target.device is not None
        if target.device not in settings.allowed_interfaces:
            raise ValidationError(
                f"target: host interface {target.device!r} is not on the allowlist "
                "(CP_CHAOS__ALLOWED_INTERFACES)",
                field="target",
            )
        if target.device not in _devices(None):
            raise ValidationError(f"target: no interface {target.device!r}", field="target")
        return None, target.device
    assert target.netns is not None
    if not netns_exists(target.netns):
        raise ValidationError(
            f"target: network namespace {target.netns!r} does not exist", field="target"
        )
    devices = [d for d in _devices(target.netns) if d != "lo"]
    if target.device is not None:
        if target.device not in devices and target.device != "lo":
            raise ValidationError(
                f"target: no device {target.device!r} in namespace {target.netns!r}",
                field="target",
            )
        return target.netns, target.device
    if len(devices) != 1:
        raise ValidationError(
            f"target: namespace {target.netns!r} has devices {devices or 'none'}; "
            "name one as netns:NAME/DEV",
            field="target",
        )
    return target.netns, devices[0]


def plan(fault: NetFault, caps: Capabilities, *, port: int | None) -> dict[str, str]:
    """Which mechanism carries each part of the fault on this kernel.

    Raises:
        ValidationError: the fault needs something this kernel lacks and has no fallback.
    """
    scoped = "htb+u32+" if port is not None else ""
    if caps.netem and (port is None or caps.htb):
        return {"network": f"{scoped}netem"}
    missing = fault.needs_netem()
    if missing:
        raise ValidationError(
            f"fault: {', '.join(missing)} needs sch_netem, which this kernel lacks",
            field="fault",
        )
    out: dict[str, str] = {}
    if fault.delay_ms is not None:
        if port is None:
            raise ValidationError(
                "fault: delay without sch_netem needs a port (the delaying proxy sits in "
                "front of one server port): use a target like netns:NAME:8000",
                field="target",
            )
        if not caps.nft_redirect:
            raise ValidationError("fault: delay needs sch_netem or nftables redirect")
        out["delay"] = "proxy+nft-redirect"
    if fault.drops:
        if not caps.nft_numgen:
            raise ValidationError("fault: loss needs sch_netem or nftables numgen")
        out["loss"] = "nft-numgen" if not fault.partition else "nft-drop"
    if fault.rate_bps is not None:
        if port is not None and caps.htb:
            out["rate"] = "htb+u32"
        elif port is None and caps.tbf:
            out["rate"] = "tbf"
        else:
            raise ValidationError("fault: rate needs sch_netem, tbf or htb")
    if not out:
        raise ValidationError("fault: nothing to inject", field="fault")
    return out


class Injector:
    """Applies faults for one settings group; every call checks before it changes anything."""

    def __init__(self, settings: ChaosSettings, state_dir: Path) -> None:
        self.settings = settings
        self.state_dir = state_dir
        self.handle = settings.qdisc_handle

    def inject(self, key: str, target: Target, fault: Fault, *, ttl_s: float) -> Injection:
        """Check, record, start the watchdog, apply.

        Raises:
            ValidationError: bad target or a fault this kernel cannot carry (nothing applied).
            ConflictError: the device already carries a qdisc we do not own, or a fault of
                ours; or applying failed (what was applied has been undone).
        """
        if ttl_s <= 0:
            raise ValidationError("duration: must be positive", field="duration")
        netns, device = resolve(target, self.settings)
        if isinstance(fault, ProcessFault):
            if target.kind != "pid":
                raise ValidationError(
                    f"target: {fault.action} needs a process target (pid:PID)", field="target"
                )
            return self._process(key, target, fault, ttl_s)
        if target.kind == "pid" or device is None:
            raise ValidationError("target: network faults need netns:... or host:...")
        caps = probe(netns)
        mechanisms = plan(fault, caps, port=target.port)
        needs_qdisc = "network" in mechanisms or "rate" in mechanisms
        table = self.settings.nft_table
        if needs_qdisc:
            self._check_root(netns, device)
        if "loss" in mechanisms or "delay" in mechanisms:
            if run(in_netns(netns, ["nft", "list", "table", "inet", table])).ok:
                raise ConflictError(
                    f"nft table {table} already exists in {netns or 'the host'}: another "
                    "experiment is running, or run `cplane chaos sweep`"
                )
        inj = Injection(
            key=key,
            target=target,
            fault=fault,
            mechanisms=mechanisms,
            state_path=self._begin(key, target, fault, mechanisms, ttl_s),
            netns=netns,
            device=device,
        )
        started = time.monotonic()
        try:
            if needs_qdisc:
                self._qdisc(inj, fault, caps)
            if "loss" in mechanisms or "delay" in mechanisms:
                self._nft(inj, fault)
        except BaseException:
            inj.remove()
            raise
        inj.inject_s = time.monotonic() - started
        self._arm(inj, ttl_s)
        return inj

    # -- bookkeeping -------------------------------------------------------------------------

    def _begin(
        self, key: str, target: Target, fault: Fault, mechanisms: dict[str, str], ttl_s: float
    ) -> Path:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.state_dir / f"{key}.json"
        if path.exists():
            raise ConflictError(f"chaos run {key} is already active")
        me = os.getpid()
        state: dict[str, Any] = {
            "key": key,
            "target": str(target),
            "fault": fault.text,
            "mechanisms": mechanisms,
            "owner_pid": me,
            "owner_start": proc_start(me),
            "deadline": time.time() + ttl_s + self.settings.ttl_grace_s + SETUP_ALLOWANCE_S,
            "undo": [],
        }
        write_state(path, state)
        pid = spawn(path, poll_s=self.settings.watchdog_poll_s)
        watchdog = {"watchdog_pid": pid, "watchdog_start": proc_start(pid)}
        update_state(path, lambda st: st.update(watchdog))
        return path

    def _arm(self, inj: Injection, ttl_s: float) -> None:
        """Start the TTL once the fault is complete (slow set-up must not eat the duration)."""
        deadline = time.time() + ttl_s + self.settings.ttl_grace_s
        if not update_state(inj.state_path, lambda state: state.update(deadline=deadline)):
            raise ConflictError(f"chaos run {inj.key} was aborted while being applied")
        inj.watchdog_pid = (read_state(inj.state_path) or {}).get("watchdog_pid")

    def _record(self, inj: Injection, record: dict[str, Any]) -> None:
        if not update_state(inj.state_path, lambda state: state["undo"].append(record)):
            raise ConflictError(f"chaos run {inj.key} was aborted while being applied")

    def _must(self, inj: Injection, argv: list[str], stdin: str | None = None) -> None:
        res = run(in_netns(inj.netns, argv), stdin=stdin)
        if not res.ok:
            first = res.err.splitlines()[0] if res.err else f"exit {res.rc}"
            raise ConflictError(f"{argv[0]} failed on {inj.target}: {first}")

    # -- network -----------------------------------------------------------------------------

    def _check_root(self, netns: str | None, device: str) -> None:
        root = root_qdisc(netns, device)
        if root is None:
            raise ValidationError(f"target: cannot read qdiscs of {device}", field="target")
        if root.get("handle") == f"{self.handle}:":
            raise ConflictError(
                f"{device} already carries a chaos fault (handle {self.handle}:): abort it, "
                "or run `cplane chaos sweep`"
            )
        if root.get("kind") not in DEFAULT_ROOTS or root.get("handle") not in ("0:", None):
            raise ConflictError(
                f"{device} has a root qdisc we do not own ({root.get('kind')} "
                f"{root.get('handle')}); refusing to replace it"
            )

    def _qdisc(self, inj: Injection, fault: NetFault, caps: Capabilities) -> None:
        dev, h = inj.device, self.handle
        assert dev is not None
        port = inj.target.port
        child = f"{int(h, 16) + 1:x}"
        if port is None:
            if "network" in inj.mechanisms:
                neutral = [netem_neutral(dev, parent="root", handle=h)]
                self._record(inj, _qrec(inj, neutral, h))
                limit = self.settings.netem_limit
                self._must(inj, netem_qdisc(dev, fault, parent="root", handle=h, limit=limit))
            else:
                assert fault.rate_bps is not None
                neutral = [tbf_qdisc(dev, handle=h, rate_bps=UNLIMITED_BPS, op="change")]
                self._record(inj, _qrec(inj, neutral, h))
                self._must(inj, tbf_qdisc(dev, handle=h, rate_bps=fault.rate_bps))
            return
        # One port: HTB with an unimpaired default class 1 and the impaired class 2 (HTB
        # rather than prio: prio's priomap sends unfiltered bulk traffic to the last band,
        # and some kernels lack sch_prio altogether).
        neutral = [htb_class(dev, handle=h, minor=2, rate_bps=UNLIMITED_BPS, op="change")]
        if "network" in inj.mechanisms:
            neutral.insert(0, netem_neutral(dev, parent=f"{h}:2", handle=child))
        self._record(inj, _qrec(inj, neutral, h))
        self._must(inj, htb_root(dev, handle=h))
        self._must(inj, htb_class(dev, handle=h, minor=1, rate_bps=UNLIMITED_BPS))
        impaired = fault.rate_bps if "rate" in inj.mechanisms else None
        self._must(inj, htb_class(dev, handle=h, minor=2, rate_bps=impaired or UNLIMITED_BPS))
        if "network" in inj.mechanisms:
            limit = self.settings.netem_limit
            self._must(inj, netem_qdisc(dev, fault, parent=f"{h}:2", handle=child, limit=limit))
        for argv in u32_port_filters(dev, handle=h, port=port, minor=2):
            self._must(inj, argv)

    def _nft(self, inj: Injection, fault: NetFault) -> None:
        table = self.settings.nft_table
        inj.table = table
        redirect = None
        if "delay" in inj.mechanisms:
            redirect = self._proxy(inj, fault)
        drop = None
        if "loss" in inj.mechanisms:
            drop = 10000 if fault.partition else round((fault.loss_pct or 0) * 100)
        script = nft_ruleset(
            table, dev=inj.device, port=inj.target.port, drop_per_10k=drop, redirect_to=redirect
        )
        self._record(inj, {"kind": "nft", "netns": inj.netns, "table": table})
        self._must(inj, ["nft", "-f", "-"], stdin=script)

    def _proxy(self, inj: Injection, fault: NetFault) -> int:
        stats = self.state_dir / f"{inj.key}.proxy"
        argv = [sys.executable, "-m", "controlplane.chaos._proxy"]
        argv += ["--delay-ms", str(fault.delay_ms), "--jitter-ms", str(fault.jitter_ms or 0)]
        argv += ["--distribution", "normal" if fault.distribution == "normal" else "uniform"]
        argv += ["--owner-pid", str(os.getpid()), "--stats", str(stats)]
        argv += ["--drain-s", str(PROXY_DRAIN_S)]
        errors = self.state_dir / f"{inj.key}.proxy.err"
        with errors.open("w") as err:  # kept for the message below if it does not start
            proc = subprocess.Popen(
                in_netns(inj.netns, argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                start_new_session=True,
                text=True,
            )
        inj.children.append(proc)
        self._record(
            inj,
            {
                "kind": "kill",
                "pid": proc.pid,
                "start": proc_start(proc.pid),
                "what": "proxy",
                "file": str(stats),
                "drain_s": PROXY_DRAIN_S,
            },
        )
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], PROXY_READY_S)
        line = proc.stdout.readline() if ready else ""
        proc.stdout.close()
        tail = errors.read_text(errors="replace").strip().splitlines()[-1:] or [""]
        errors.unlink(missing_ok=True)  # cleanup leaves nothing in the state directory
        if not line.startswith("ready "):
            raise ConflictError(
                f"the delaying proxy did not start in {inj.target}: {tail[0] or 'no output'}"
            )
        inj.proxy_stats = stats
        inj.extra["proxy_pid"] = proc.pid
        return int(line.split()[1])

    # -- processes ---------------------------------------------------------------------------

    def _process(self, key: str, target: Target, fault: ProcessFault, ttl_s: float) -> Injection:
        pid = target.pid
        assert pid is not None
        start = proc_start(pid)
        if start is None:
            raise ValidationError(f"target: no process {pid}", field="target")
        if pid == os.getpid():
            raise ValidationError("target: refusing to fault the control plane itself")
        mechanisms = {"pause": {"pause": "sigstop"}, "crash": {"crash": "sigkill"}}.get(
            fault.action, {"cpu": "busy-loop processes"}
        )
        inj = Injection(
            key=key,
            target=target,
            fault=fault,
            mechanisms=mechanisms,
            state_path=self._begin(key, target, fault, mechanisms, ttl_s),
        )
        began = time.monotonic()
        try:
            if fault.action == "pause":
                self._record(inj, {"kind": "cont", "pid": pid, "start": start})
                os.kill(pid, signal.SIGSTOP)
            elif fault.action == "crash":
                os.kill(pid, signal.SIGKILL)
            else:
                hogs = []
                for _ in range(fault.workers):
                    hog = subprocess.Popen(
                        [sys.executable, "-c", _HOG],
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                    inj.children.append(hog)
                    rec = {"kind": "kill", "pid": hog.pid, "start": proc_start(hog.pid)}
                    self._record(inj, {**rec, "what": "cpu-hog"})
                    hogs.append(hog.pid)
                inj.extra["hog_pids"] = hogs
        except BaseException:
            inj.remove()
            raise
        inj.inject_s = time.monotonic() - began
        self._arm(inj, ttl_s)
        return inj


def _qrec(inj: Injection, neutral: list[list[str]], handle: str) -> dict[str, Any]:
    return {
        "kind": "qdisc",
        "netns": inj.netns,
        "dev": inj.device,
        "handle": handle,
        "neutral": neutral,
    }


def netns_names() -> list[str]:
    res = run(["ip", "netns", "list"])
    return [line.split()[0] for line in res.out.splitlines() if line.strip()] if res.ok else []


def sweep_all(settings: ChaosSettings, state_dir: Path, *, scan: bool = True) -> list[str]:
    """Start-up sweep: orphaned state files, then (``scan``) every namespace and allowlisted
    interface for a root with our handle or our nft table that no live experiment claims.

    Scanning assumes this state directory is the only one on the machine; without ``scan``
    only this directory's orphans are undone, which is always safe.
    """
    devices: list[tuple[str | None, str]] = []
    if scan:
        devices += [(None, dev) for dev in settings.allowed_interfaces]
        for ns in netns_names():
            devices += [(ns, dev) for dev in _devices(ns) if dev != "lo"]
    return sweep(
        state_dir, table=settings.nft_table, handle=settings.qdisc_handle, devices=devices
    )
