"""A ``pid:`` fault touches only a registered engine's processes: the one listening on the
engine URL's port, or a process it started. Any other process is refused before anything is
recorded or signalled."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from controlplane.chaos import runs as chaos_runs
from controlplane.chaos._owners import endpoint
from controlplane.chaos._owners import owning_engine
from controlplane.domain import ValidationError
from controlplane.schemas.chaos import ChaosRunCreate
from controlplane.schemas.engines import EngineCreate
from controlplane.settings import ChaosSettings
from controlplane.settings import Settings
from controlplane.store import chaos as chaos_store
from controlplane.store import engines
from controlplane.store import schema
from controlplane.store.database import SessionFactory
from controlplane.store.database import make_engine
from controlplane.store.database import make_session_factory
from controlplane.store.database import unit_of_work
from tests.fixtures.engines import free_port

# Listens on the port, starts a child (a worker), prints both pids, then waits.
_SERVER = """
import socket, subprocess, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(child.pid, flush=True)
time.sleep(600)
"""


@dataclass
class Served:
    port: int
    server: subprocess.Popen[str]
    child: int


@pytest.fixture
def served() -> Iterator[Served]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(port)], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    child = int(server.stdout.readline())
    try:
        yield Served(port, server, child)
    finally:
        subprocess.run(["kill", "-9", str(child)], check=False)
        server.kill()
        server.wait()
        server.stdout.close()


@pytest.fixture
def stranger() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "600"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[Settings, SessionFactory, Engine]]:
    settings = Settings(data_dir=tmp_path, chaos=ChaosSettings(ttl_grace_s=1.0))
    db = make_engine(settings)
    schema.upgrade(db)
    yield settings, make_session_factory(db), db
    db.dispose()


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


def _register(sessions: SessionFactory, name: str, url: str) -> None:
    with unit_of_work(sessions) as s:
        data = EngineCreate.model_validate({"name": name, "url": url})
        engines.add_engine(s, data=data, actor="t")


def test_the_listener_and_its_children_belong_to_the_engine(served: Served) -> None:
    ep = endpoint("ref", f"http://127.0.0.1:{served.port}")
    assert ep is not None
    assert owning_engine(served.server.pid, [ep]) == "ref"
    assert owning_engine(served.child, [ep]) == "ref"
    other = endpoint("other", f"http://127.0.0.1:{free_port()}")
    assert other is not None
    with pytest.raises(ValidationError, match="does not belong to a registered engine"):
        owning_engine(served.server.pid, [other])


def test_a_process_of_no_engine_is_refused_and_nothing_is_recorded(
    store: tuple[Settings, SessionFactory, Engine],
    served: Served,
    stranger: subprocess.Popen[bytes],
) -> None:
    settings, sessions, _db = store
    _register(sessions, "ref", f"http://127.0.0.1:{served.port}")
    for engine in (None, "ref"):
        body = ChaosRunCreate(
            target=f"pid:{stranger.pid}", fault="pause", duration_s=1.0, engine=engine
        )
        with pytest.raises(ValidationError) as err:
            chaos_runs.start(sessions, settings, body, actor="user:t")
        assert err.value.field == "target"
    time.sleep(0.1)
    assert _state(stranger.pid) != "T"
    with unit_of_work(sessions) as s:
        assert chaos_store.list_experiments(s) == []


def test_an_engines_worker_may_be_paused(
    store: tuple[Settings, SessionFactory, Engine], served: Served
) -> None:
    settings, sessions, _db = store
    _register(sessions, "ref", f"http://127.0.0.1:{served.port}")
    _register(sessions, "other", f"http://127.0.0.1:{free_port()}")
    wrong = ChaosRunCreate(
        target=f"pid:{served.child}", fault="pause", duration_s=1.0, engine="other"
    )
    with pytest.raises(ValidationError):
        chaos_runs.start(sessions, settings, wrong, actor="user:t")
    body = ChaosRunCreate(
        target=f"pid:{served.child}", fault="pause", duration_s=1.0, engine="ref"
    )
    started = chaos_runs.start(sessions, settings, body, actor="user:t")
    try:
        assert _state(served.child) == "T"
    finally:
        read = chaos_runs.finish(sessions, started, actor="user:t")
    assert read.state == "completed", read.error
    assert _state(served.child) != "T"
