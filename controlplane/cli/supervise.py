"""``cplane engine supervise``: own a process-managed engine on this node.

The node-side half of the process adapter: starts the engine's replicas (the preset's
command line) and the HAProxy in front of them, serves the control API on the engine's own
URL, and carries out the control plane's changes and canary steps, so the control plane
needs neither SSH nor a shell here. Register the engine with ``--kind process``, the URL
printed at start and the same admin token. SIGTERM or Ctrl-C stops the replicas and the
proxy.
"""

from __future__ import annotations

import logging
import signal
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from controlplane.cli.rollouts import parse_changes
from controlplane.engines.process import ProcessSpec
from controlplane.engines.process import Supervisor
from controlplane.engines.process.control import ControlServer

log = logging.getLogger(__name__)


def supervise(
    name: str,
    command: Annotated[list[str], typer.Argument(help="The engine's command, after --.")],
    preset: Annotated[str, typer.Option(help="reference, vllm, sglang or tgi.")] = "reference",
    replicas: Annotated[int, typer.Option(min=1, max=16)] = 1,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Initial knob=value (repeatable).")
    ] = None,
    listen: Annotated[
        str, typer.Option(help="Address the proxy listens on (traffic, metrics).")
    ] = "127.0.0.1",
    token: Annotated[
        str, typer.Option(envvar="CP_ENGINE_ADMIN_TOKEN", help="Admin token (16+ chars).")
    ] = "",
    workdir: Annotated[Path | None, typer.Option(help="Logs and the proxy's socket.")] = None,
) -> None:
    """Run an engine's replicas behind HAProxy and take changes from the control plane."""
    spec = ProcessSpec(
        name=name,
        preset=preset,
        command=tuple(command),
        replicas=replicas,
        config=parse_changes(set_ or []),
        listen_host=listen,
    )
    directory = workdir or Path(tempfile.mkdtemp(prefix=f"cplane-{name}-"))
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    supervisor = Supervisor(spec, directory)
    control = ControlServer(supervisor, token=token)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    supervisor.start()
    control.start()
    print(f"engine {name}: serving on {supervisor.url} (register it with --kind process)")
    try:
        stop.wait()
    finally:
        control.stop()
        supervisor.stop()
