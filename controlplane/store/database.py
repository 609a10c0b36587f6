"""One engine and one session factory per process, built from settings at the edge.

SQLite gets WAL (readers never block the writer), enforced foreign keys and a busy timeout, so
the embedded default behaves like a real database under the API's thread pool. Connection
failures become :class:`StoreUnavailableError` naming the URL with its password masked.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy import event
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from controlplane.domain import StoreUnavailableError
from controlplane.settings import Settings

SessionFactory = sessionmaker[Session]


def masked_url(url: str) -> str:
    """The URL as safe to print: the password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def make_engine(settings: Settings) -> Engine:
    url = settings.resolved_database_url
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreUnavailableError(f"database URL is not valid: {masked_url(url)}") from exc
    kwargs: dict[str, Any] = {"echo": settings.db.echo, "pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": settings.db.connect_timeout_s}
    else:
        kwargs["pool_size"] = settings.db.pool_size
        if parsed.get_backend_name() == "postgresql":
            kwargs["connect_args"] = {
                "connect_timeout": max(1, int(settings.db.connect_timeout_s))
            }
    try:
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, ImportError) as exc:
        raise StoreUnavailableError(f"cannot use database {masked_url(url)}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite opens transactions lazily and on its own terms, which breaks SAVEPOINTs: a
    # RELEASE without an outer BEGIN commits. Take transaction control away from the driver
    # and emit BEGIN ourselves (SQLAlchemy's documented recipe for pysqlite).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=5000")
    finally:
        cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # IMMEDIATE takes the write lock up front. A deferred transaction that read, and then
    # finds another writer committed meanwhile, cannot upgrade its snapshot and fails at once
    # ("database is locked", busy timeout or not): with the guard's heartbeats and the
    # collectors' batches writing concurrently that is routine. Waiting briefly is better.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> SessionFactory:
    return sessionmaker(engine, expire_on_commit=False)


def check_reachable(engine: Engine) -> None:
    """Raise :class:`StoreUnavailableError` unless a trivial query succeeds."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        url = engine.url.render_as_string(hide_password=True)
        raise StoreUnavailableError(f"database unreachable at {url}: {reason}") from exc


@contextmanager
def unit_of_work(factory: SessionFactory) -> Iterator[Session]:
    """Commit on success, roll back on error: for the CLI and jobs (routes use ``SessionDep``)."""
    with factory() as session, session.begin():
        yield session
