"""What every command shares: the settings (built once, in the root callback) and the store."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field

import typer
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from controlplane.settings import Settings
from controlplane.store.database import check_reachable
from controlplane.store.database import make_engine
from controlplane.store.database import make_session_factory
from controlplane.store.database import unit_of_work
from controlplane.store.schema import check_schema_current


@dataclass
class CliContext:
    settings: Settings
    _engine: Engine | None = field(default=None, repr=False)

    def engine(self, *, check_schema: bool = True) -> Engine:
        if self._engine is None:
            engine = make_engine(self.settings)
            check_reachable(engine)
            self._engine = engine
        if check_schema:
            check_schema_current(self._engine)
        return self._engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        with unit_of_work(make_session_factory(self.engine())) as session:
            yield session

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def cli_context(ctx: typer.Context) -> CliContext:
    obj = ctx.find_root().obj
    assert isinstance(obj, CliContext)
    return obj


def cli_actor() -> str:
    """Whoever can run the CLI against the store holds its credentials: record the OS user."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"
