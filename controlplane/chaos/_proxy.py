"""A delaying TCP proxy: the delay fallback on kernels without ``sch_netem``.

nftables redirects new connections to one server port here (``redirect to :PORT``); the proxy
finds the original destination with ``SO_ORIGINAL_DST`` and forwards to it, holding every
client-to-server chunk for the delay (plus jitter) while keeping byte order. Replies pass
untouched, so the added latency is one-way, as a netem delay on one egress would be.

It runs as its own process inside the target namespace and exits when its owner dies, so a
killed injector cannot leave a proxy holding connections; the nft rule that feeds it belongs
to the owned table and the watchdog removes it.

Removal is neutralise-then-delete, as for a qdisc: SIGTERM stops accepting, drops the delay to
zero and closes each connection once it is idle after a reply (the last bytes went to the
client), so a keep-alive client reconnects (directly, the redirect being gone) instead of
losing a request in flight. Whatever is still busy after the drain window is cut.

Run: ``python -m controlplane.chaos._proxy --delay-ms 50 [--jitter-ms 10] [--upstream H:P]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import struct
import sys
import time
from pathlib import Path

SO_ORIGINAL_DST = 80
CHUNK = 65536


class Stats:
    def __init__(self) -> None:
        self.connections = 0
        self.active = 0
        self.chunks_delayed = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.upstream_errors = 0

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


class Conn:
    """One proxied connection: when it last moved bytes, and in which direction."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.last = time.monotonic()
        self.awaiting_reply = False
        self.queued = 0

    def idle(self, quiet_s: float) -> bool:
        quiet = time.monotonic() - self.last >= quiet_s
        return quiet and not self.awaiting_reply and self.queued == 0

    def close(self) -> None:
        for w in (self.client, self.upstream):
            if w is not None:
                w.close()


class DelayProxy:
    def __init__(
        self,
        *,
        delay_ms: float,
        jitter_ms: float,
        distribution: str,
        upstream: tuple[str, int] | None,
    ) -> None:
        self.delay_s = delay_ms / 1000
        self.jitter_s = jitter_ms / 1000
        self.distribution = distribution
        self.upstream = upstream
        self.stats = Stats()
        self.conns: set[Conn] = set()

    def _hold(self) -> float:
        if self.jitter_s <= 0:
            return self.delay_s
        if self.distribution == "normal":
            return max(0.0, random.gauss(self.delay_s, self.jitter_s))
        return max(0.0, self.delay_s + random.uniform(-self.jitter_s, self.jitter_s))

    def _destination(self, writer: asyncio.StreamWriter) -> tuple[str, int] | None:
        if self.upstream is not None:
            return self.upstream
        sock = writer.get_extra_info("socket")
        try:
            raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
        except OSError:
            return None
        port, packed = struct.unpack_from("!2xH4s", raw)
        return socket.inet_ntoa(packed), port

    def neutralise(self) -> None:
        self.delay_s = 0.0
        self.jitter_s = 0.0

    async def drain(self, *, window_s: float, quiet_s: float = 0.1) -> None:
        """Close connections as they fall idle after a reply; cut the rest at the end."""
        deadline = time.monotonic() + window_s
        while self.conns and time.monotonic() < deadline:
            for conn in [c for c in self.conns if c.idle(quiet_s)]:
                conn.close()
                self.conns.discard(conn)
            await asyncio.sleep(0.02)
        for conn in self.conns:
            conn.close()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        self.stats.active += 1
        dest = self._destination(writer)
        try:
            if dest is None:
                raise OSError("no original destination")
            up_reader, up_writer = await asyncio.open_connection(*dest)
        except OSError:
            self.stats.upstream_errors += 1
            self.stats.active -= 1
            writer.close()
            return
        conn = Conn(writer)
        conn.upstream = up_writer
        self.conns.add(conn)
        try:
            await asyncio.gather(
                self._delayed(reader, up_writer, conn), self._plain(up_reader, writer, conn)
            )
        finally:
            self.stats.active -= 1
            self.conns.discard(conn)
            conn.close()

    async def _delayed(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, conn: Conn
    ) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        last = 0.0

        async def release() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    break
                wait = due - time.monotonic()
                if wait > 0 and self.delay_s > 0:
                    await asyncio.sleep(wait)
                dst.write(data)
                await dst.drain()
                conn.queued -= 1
                conn.last = time.monotonic()
            if dst.can_write_eof():
                dst.write_eof()

        sender = asyncio.create_task(release())
        try:
            while True:
                data = await src.read(CHUNK)
                # Never release before an earlier chunk: jitter must not reorder a byte stream.
                last = max(last, time.monotonic() + self._hold())
                if data:
                    conn.queued += 1
                    conn.awaiting_reply = True
                    conn.last = time.monotonic()
                await queue.put((last, data))
                if not data:
                    break
                self.stats.chunks_delayed += 1
                self.stats.bytes_up += len(data)
            await sender
        except (ConnectionError, OSError):
            sender.cancel()

    async def _plain(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, conn: Conn
    ) -> None:
        try:
            while data := await src.read(CHUNK):
                self.stats.bytes_down += len(data)
                conn.awaiting_reply = False
                conn.last = time.monotonic()
                dst.write(data)
                await dst.drain()
            if dst.can_write_eof():
                dst.write_eof()
        except (ConnectionError, OSError):
            pass


def owner_alive(pid: int | None) -> bool:
    if pid is None:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


async def serve(args: argparse.Namespace) -> None:
    upstream = None
    if args.upstream:
        host, _, port = args.upstream.rpartition(":")
        upstream = (host, int(port))
    proxy = DelayProxy(
        delay_ms=args.delay_ms,
        jitter_ms=args.jitter_ms,
        distribution=args.distribution,
        upstream=upstream,
    )
    server = await asyncio.start_server(proxy.handle, args.host, args.port)
    port = server.sockets[0].getsockname()[1]
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    print(f"ready {port}", flush=True)
    stats = Path(args.stats) if args.stats else None
    while owner_alive(args.owner_pid) and not stopping.is_set():
        if stats is not None:
            tmp = stats.with_suffix(".tmp")
            tmp.write_text(json.dumps(proxy.stats.as_dict()))
            os.replace(tmp, stats)
        try:
            await asyncio.wait_for(stopping.wait(), 0.2)
        except TimeoutError:
            pass
    server.close()
    proxy.neutralise()
    await proxy.drain(window_s=args.drain_s)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay-ms", type=float, required=True)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--distribution", default="uniform", choices=("uniform", "normal"))
    parser.add_argument("--upstream", default=None, help="HOST:PORT instead of SO_ORIGINAL_DST")
    parser.add_argument("--owner-pid", type=int, default=None)
    parser.add_argument("--stats", default=None, help="file to write counters to")
    parser.add_argument("--drain-s", type=float, default=2.0, help="drain window on SIGTERM")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
