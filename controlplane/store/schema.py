"""Alembic wrapped as library functions: the CLI, the app's start-up check and the tests all
call these, so there is one way to migrate and one way to ask whether the schema is current.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

import migrations
from controlplane.domain import SchemaOutdatedError
from controlplane.store.database import read_only_engine

VERSION_TABLE = "cp_alembic_version"
MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent
_lock = threading.Lock()


def alembic_config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if engine is not None:
        url = engine.url.render_as_string(hide_password=False)
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("the migrations directory holds no revision")
    return head


def current_revision(engine: Engine) -> str | None:
    # A read: on SQLite it must not queue for the write lock (``/readyz`` asks this).
    with read_only_engine(engine).connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    _run(engine, "upgrade", revision)


def downgrade(engine: Engine, revision: str) -> None:
    _run(engine, "downgrade", revision)


def upgrade_sql(engine: Engine, revision: str = "head") -> str:
    """The SQL an upgrade would run, without running it (``cplane db upgrade --sql``)."""
    buffer = io.StringIO()
    cfg = alembic_config(engine)
    cfg.output_buffer = buffer
    with _lock:
        command.upgrade(cfg, revision, sql=True)
    return buffer.getvalue()


def _run(engine: Engine, verb: str, revision: str) -> None:
    cfg = alembic_config(engine)
    with _lock, engine.connect() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, verb)(cfg, revision)
        conn.commit()


def check_schema_current(engine: Engine) -> None:
    """Refuse to run on a schema other than the code's head, naming the fix in one line."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        url = engine.url.render_as_string(hide_password=True)
        where = "empty" if current is None else f"at revision {current}"
        raise SchemaOutdatedError(
            f"database schema at {url} is {where}, this code needs {head}: run `cplane db upgrade`"
        )
