"""Cleanup that does not depend on the process that injected the fault.

Every change is written to a state file *before* it is made (write-ahead), as an undo record.
A watchdog, started as its own process in its own session, watches the injector and the
deadline (start + duration + grace): when either the injector dies (SIGKILL included) or the
deadline passes, it replays the undo records. The injector itself undoes on a normal finish.
Both take an exclusive lock first and the one that wins deletes the state file, so undo runs
once. ``sweep`` does the same at start-up for state files whose injector and watchdog are both
gone, then removes anything still carrying the reserved handle or table name.

Undo order matters: stopped processes are continued first, then nft tables go (the redirect
to a proxy disappears before the proxy), then qdiscs are neutralised and deleted once, then
helper processes are killed, and last the namespaces we created are deleted.

Run: ``python -m controlplane.chaos._watchdog STATE_FILE [--poll S]``.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from controlplane.chaos._commands import in_netns
from controlplane.chaos._commands import qdisc_del
from controlplane.chaos._commands import root_qdisc
from controlplane.chaos._commands import run

_ORDER = {"cont": 0, "nft-rules": 1, "qdisc": 2, "kill": 3, "nft": 4, "netns": 5}


def proc_start(pid: int) -> str | None:
    """The process start time in clock ticks: with the pid, an identity reuse cannot fake."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]


def alive(pid: int | None, start: str | None) -> bool:
    if pid is None:
        return False
    now = proc_start(pid)
    return now is not None and (start is None or now == start)


def write_state(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, sort_keys=True))
    os.replace(tmp, path)


def read_state(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def update_state(path: Path, change: Callable[[dict[str, Any]], None]) -> bool:
    """Change a state file under the cleanup lock; ``False`` if cleanup already removed it
    (so a late write can never resurrect a state file whose faults were undone)."""
    try:
        fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT, 0o600)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        state = read_state(path)
        if state is None or os.fstat(fd).st_nlink == 0:
            return False
        change(state)
        write_state(path, state)
        return True
    finally:
        os.close(fd)


def undo_one(record: dict[str, Any]) -> str:
    kind = record["kind"]
    if kind in ("cont", "kill"):
        pid, start = int(record["pid"]), record.get("start")
        if record.get("file"):
            Path(record["file"]).unlink(missing_ok=True)
        if not alive(pid, start):
            return f"{kind} {pid}: already gone"
        if record.get("drain_s"):
            # A proxy: SIGTERM lets it finish replies in flight, then it is cut regardless.
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + float(record["drain_s"]) + 1.0
            while alive(pid, start) and time.monotonic() < deadline:
                _reap(pid)
                time.sleep(0.02)
            if not alive(pid, start):
                return f"drained {record.get('what', 'pid')} {pid}"
        os.kill(pid, signal.SIGCONT if kind == "cont" else signal.SIGKILL)
        if kind == "kill":
            _reap(pid)
        return f"{'continued' if kind == 'cont' else 'killed'} {record.get('what', 'pid')} {pid}"
    if kind == "nft-rules":
        # Neutralise: rules go (no new drop, no new redirect) but the chains stay, so the NAT
        # hook stays registered and connections already redirected to a proxy keep being
        # translated while the proxy drains them; the table itself goes after the proxy.
        ns, table = record.get("netns"), record["table"]
        res = run(in_netns(ns, ["nft", "flush", "table", "inet", table]))
        return f"nft rules of {table} in {ns or 'host'}: {'flushed' if res.ok else 'absent'}"
    if kind == "nft":
        ns, table = record.get("netns"), record["table"]
        res = run(in_netns(ns, ["nft", "delete", "table", "inet", table]))
        return f"nft table {table} in {ns or 'host'}: {'removed' if res.ok else 'absent'}"
    if kind == "qdisc":
        ns, dev, handle = record.get("netns"), record["dev"], record["handle"]
        root = root_qdisc(ns, dev)
        if root is None or root.get("handle") != f"{handle}:":
            return f"qdisc {handle}: on {dev}: absent"
        for argv in record.get("neutral") or []:
            run(in_netns(ns, argv))
        res = run(in_netns(ns, qdisc_del(dev, handle=handle)))
        return f"qdisc {handle}: on {dev} in {ns or 'host'}: {'removed' if res.ok else res.err}"
    if kind == "netns":
        name = record["name"]
        return delete_netns(name)
    return f"unknown undo record {kind!r}"


def delete_netns(name: str) -> str:
    """Kill what runs inside, then delete: a namespace with live processes outlives its name."""
    pids = run(["ip", "netns", "pids", name])
    for word in pids.out.split() if pids.ok else []:
        try:
            os.kill(int(word), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    res = run(["ip", "netns", "del", name])
    return f"netns {name}: {'deleted' if res.ok else 'absent'}"


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def cleanup(path: Path) -> list[str]:
    """Replay the undo records of one state file, once, whoever calls it (idempotent)."""
    lock = lock_path(path)
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    except FileNotFoundError:
        return []
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        state = read_state(path)
        if state is None:
            return []
        undo = state.get("undo", [])
        undo = undo + [{**r, "kind": "nft-rules"} for r in undo if r["kind"] == "nft"]
        records = list(enumerate(undo))
        records.sort(key=lambda item: (_ORDER.get(item[1]["kind"], 9), -item[0]))
        log = []
        for _, record in records:
            try:
                log.append(undo_one(record))
            except Exception as exc:  # noqa: BLE001 - one failed undo must not stop the rest
                log.append(f"{record.get('kind')}: {exc}")
        path.unlink(missing_ok=True)
        lock.unlink(missing_ok=True)
        return log
    finally:
        os.close(fd)


def watch(path: Path, *, poll_s: float) -> list[str]:
    """Wait for the injector to finish (state file gone), die, or overrun its deadline."""
    while True:
        state = read_state(path)
        if state is None:
            return []
        owner_gone = not alive(state.get("owner_pid"), state.get("owner_start"))
        if owner_gone or time.time() >= float(state["deadline"]):
            return cleanup(path)
        time.sleep(poll_s)


def spawn(path: Path, *, poll_s: float = 0.1) -> int:
    """Start a watchdog that outlives us: detached (double fork), its own session, no pipes
    back to the injector, and not our child, so nothing of ours has to reap it."""
    res = subprocess.run(
        [sys.executable, "-m", "controlplane.chaos._watchdog", str(path), "--poll", str(poll_s)]
        + ["--detach"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return int(res.stdout.split()[-1])


def _detach() -> None:
    pid = os.fork()
    if pid:
        print(pid, flush=True)
        os._exit(0)
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)


def sweep(
    state_dir: Path, *, table: str, handle: str, devices: list[tuple[str | None, str]]
) -> list[str]:
    """Start-up sweep: orphaned state files first, then leftovers carrying our marks.

    ``devices`` lists (namespace or None, device) pairs to check for the reserved handle:
    allowlisted host interfaces and the devices of namespaces we may have used. A state file
    whose injector or watchdog still lives is left to them.
    """
    log: list[str] = []
    claimed: set[tuple[str | None, str]] = set()
    for path in sorted(state_dir.glob("*.json")) if state_dir.is_dir() else []:
        state = read_state(path)
        if state is None:
            continue
        live = alive(state.get("owner_pid"), state.get("owner_start")) or alive(
            state.get("watchdog_pid"), state.get("watchdog_start")
        )
        if live and time.time() < float(state["deadline"]):
            for rec in state.get("undo", []):
                claimed.add((rec.get("netns"), rec.get("dev") or rec.get("table", "")))
            continue
        log += cleanup(path)
    for ns, dev in devices:
        if (ns, dev) in claimed:
            continue
        root = root_qdisc(ns, dev)
        if root is not None and root.get("handle") == f"{handle}:":
            res = run(in_netns(ns, qdisc_del(dev, handle=handle)))
            log.append(f"swept qdisc {handle}: on {dev} in {ns or 'host'}: rc {res.rc}")
    for ns in {ns for ns, _ in devices}:
        if (ns, table) in claimed:
            continue
        res = run(in_netns(ns, ["nft", "delete", "table", "inet", table]))
        if res.ok:
            log.append(f"swept nft table {table} in {ns or 'host'}")
    return log


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Chaos watchdog: undo a fault on owner death.")
    parser.add_argument("state")
    parser.add_argument("--poll", type=float, default=0.1)
    parser.add_argument("--detach", action="store_true", help="fork, print the pid, return")
    args = parser.parse_args(argv)
    if args.detach:
        _detach()
    # The injector's terminal going away must not take the watchdog with it.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watch(Path(args.state), poll_s=args.poll)


if __name__ == "__main__":
    main()
