"""``cplane agent``: run only the collectors on a GPU node and push to the control plane."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Annotated

import typer

from collectors import build_agent
from controlplane.cli.context import cli_context

log = logging.getLogger(__name__)


def agent(
    ctx: typer.Context,
    server: Annotated[str, typer.Option(help="Control plane base URL, e.g. http://cp:8400.")],
    token: Annotated[
        str, typer.Option(envvar="CP_AGENT_TOKEN", help="API token of an operator (or admin).")
    ],
    engine: Annotated[
        list[str] | None, typer.Option(help="Only scrape these engines (repeatable).")
    ] = None,
    source: Annotated[
        str | None, typer.Option(help="Source name of GPU/host series; default host:<hostname>.")
    ] = None,
) -> None:
    """Collect engine, GPU and host metrics here and push them to the control plane."""
    settings = cli_context(ctx).settings.collectors
    runtime, client = build_agent(server, token, settings, engines=engine or (), source=source)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    runtime.start()
    log.info("agent pushing to %s", server)
    try:
        stop.wait()
    finally:
        runtime.close()
        client.close()
