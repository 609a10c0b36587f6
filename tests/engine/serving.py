"""A real engine served by uvicorn on 127.0.0.1 in a background thread, for tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn

from engine.app import create_app
from engine.config import EngineConfig
from engine.model import MODEL_SPECS
from engine.service import Engine

ADMIN_TOKEN = "test-admin-token"


@dataclass(frozen=True)
class RunningServer:
    engine: Engine
    base_url: str
    admin_token: str | None

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}


@contextmanager
def serve_engine(
    config: EngineConfig | None = None,
    *,
    max_queue: int = 256,
    admin_token: str | None = ADMIN_TOKEN,
    seed: int = 0,
) -> Iterator[RunningServer]:
    engine = Engine(MODEL_SPECS["tiny"], config or EngineConfig(), seed=seed, max_queue=max_queue)
    app = create_app(engine, admin_token=admin_token)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the engine server did not start")
        time.sleep(0.01)
    try:
        yield RunningServer(engine, f"http://127.0.0.1:{port}", admin_token)
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def wait_until(condition: object, timeout: float = 10.0, interval: float = 0.005) -> None:
    """Polls ``condition()`` until it is true; fails the test on timeout."""
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
