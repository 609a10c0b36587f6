"""Traffic helpers run inside test namespaces (``ip netns exec NS python netprobe.py ...``).

Plain sockets, so a measurement shows what the kernel and the fault did, not a library:
- ``sink PORT``: TCP server that reads everything and answers with the byte count;
- ``send HOST PORT BYTES``: prints seconds to push BYTES and get the answer;
- ``echo PORT`` / ``rtt HOST PORT N``: median round trip of N small exchanges, in ms;
- ``udp-sink PORT SECONDS`` / ``udp-send HOST PORT N``: datagrams received of N sent;
- ``load URL SECONDS CONCURRENCY``: closed-loop load with the project's load generator;
  prints one JSON line (ok, failed, p99_s, errors);
- ``bridge PORT NETNS HOST:PORT``: listen on 127.0.0.1:PORT in the current namespace and
  forward each connection from inside NETNS (the listening socket stays where it was made).
"""

from __future__ import annotations

import ctypes
import os
import socket
import statistics
import sys
import threading
import time

CLONE_NEWNET = 0x40000000


def sink(port: int) -> None:
    srv = socket.create_server(("0.0.0.0", port), reuse_port=True)
    print("ready", flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=_drain, args=(conn,), daemon=True).start()


def _drain(conn: socket.socket) -> None:
    total = 0
    with conn:
        while data := conn.recv(65536):
            total += len(data)
            if data.endswith(b"\n"):
                break
        conn.sendall(f"{total}\n".encode())


def send(host: str, port: int, size: int) -> None:
    payload = b"x" * (size - 1) + b"\n"
    began = time.monotonic()
    with socket.create_connection((host, port), timeout=30) as conn:
        conn.sendall(payload)
        conn.recv(64)
    print(f"{time.monotonic() - began:.4f}", flush=True)


def echo(port: int) -> None:
    srv = socket.create_server(("0.0.0.0", port), reuse_port=True)
    print("ready", flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=_echo, args=(conn,), daemon=True).start()


def _echo(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(4096):
            conn.sendall(data)


def rtt(host: str, port: int, n: int) -> None:
    times = []
    with socket.create_connection((host, port), timeout=10) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(n):
            began = time.monotonic()
            conn.sendall(b"ping")
            conn.recv(16)
            times.append((time.monotonic() - began) * 1000)
    print(f"{statistics.median(times):.3f}", flush=True)


def udp_sink(port: int, seconds: float) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    sock.settimeout(0.2)
    print("ready", flush=True)
    got, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            sock.recv(2048)
            got += 1
        except TimeoutError:
            pass
    print(got, flush=True)


def udp_send(host: str, port: int, n: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(n):
        try:
            sock.sendto(b"d" * 64, (host, port))
        except PermissionError:
            pass  # a netfilter drop of our own packet surfaces as EPERM: it is lost

        if i % 100 == 99:
            time.sleep(0.005)  # stay far below any queue limit: losses are the fault's
    print(n, flush=True)


def bridge(port: int, netns: str, upstream: str) -> None:
    srv = socket.create_server(("127.0.0.1", port), reuse_port=True)
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns failed")
    host, _, up_port = upstream.rpartition(":")
    print("ready", flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=_forward, args=(conn, host, int(up_port)), daemon=True).start()


def _forward(conn: socket.socket, host: str, port: int) -> None:
    try:
        up = socket.create_connection((host, port), timeout=10)
    except OSError:
        conn.close()
        return
    up.settimeout(None)

    def pump(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    threading.Thread(target=pump, args=(up, conn), daemon=True).start()
    pump(conn, up)


def load(url: str, seconds: float, concurrency: int, max_tokens: int = 8) -> None:
    import collections
    import json

    from tuner.loadgen import LoadSpec
    from tuner.loadgen import RequestShape
    from tuner.loadgen import run_load_sync

    spec = LoadSpec(
        base_url=url,
        model="tiny",
        mode="closed",
        concurrency=concurrency,
        duration_s=seconds,
        shapes=(RequestShape(prompt_len=16, max_tokens=max_tokens),),
        extra_body={"ignore_eos": True},
    )
    print("ready", flush=True)
    res = run_load_sync(spec)
    errors = collections.Counter(r.error for r in res.records if r.status != "ok")
    print(json.dumps({"ok": res.ok, "failed": res.failed, "p99_s": res.p99, "errors": errors}))


def main() -> None:
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "sink":
        sink(int(args[0]))
    elif cmd == "send":
        send(args[0], int(args[1]), int(args[2]))
    elif cmd == "echo":
        echo(int(args[0]))
    elif cmd == "rtt":
        rtt(args[0], int(args[1]), int(args[2]))
    elif cmd == "udp-sink":
        udp_sink(int(args[0]), float(args[1]))
    elif cmd == "udp-send":
        udp_send(args[0], int(args[1]), int(args[2]))
    elif cmd == "load":
        load(args[0], float(args[1]), int(args[2]), *(int(a) for a in args[3:4]))
    elif cmd == "bridge":
        bridge(int(args[0]), args[1], args[2])
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
