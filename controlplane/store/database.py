"""One engine and one session factory per process, built from settings at the edge.

SQLite gets WAL (readers never block the writer), enforced foreign keys and a busy timeout, so
the embedded default behaves like a real database under the API's thread pool. Its file (and
so its ``-wal`` and ``-shm``, which SQLite creates with the database file's mode) and the data
directory are private (``0600`` / ``0700``) whatever the umask. Connection failures become
:class:`StoreUnavailableError` naming the URL with its password masked.

Writes begin ``IMMEDIATE`` (the write lock up front); a session from a factory made with
``read_only=True`` begins ``DEFERRED`` and so never waits for a writer: in WAL mode a reader
works on its snapshot while a bulk ingest commits.

Every engine made here carries the :class:`SecretBox` of its settings (:func:`secret_box`), so
the store decrypts engine admin tokens with the keys of the process that opened it.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection
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
from controlplane.store.files import private_dir
from controlplane.store.files import private_file
from controlplane.store.secrets import SecretBox

SessionFactory = sessionmaker[Session]
# Execution option read by the SQLite begin hook: how a transaction of this bind begins.
_SQLITE_BEGIN = "cp_sqlite_begin"
_boxes: weakref.WeakKeyDictionary[Engine, SecretBox] = weakref.WeakKeyDictionary()


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
            _private_sqlite_file(Path(parsed.database), settings.data_dir)
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
    _boxes[engine] = SecretBox.from_settings(settings)
    return engine


def secret_box(bind: Engine | Connection) -> SecretBox:
    """The keys of the process that opened ``bind`` (made by :func:`make_engine`)."""
    engine = bind.engine
    box = _boxes.get(engine) or _boxes.get(getattr(engine, "_proxied", engine))
    if box is None:
        raise RuntimeError("this database engine was not made by make_engine: it has no keys")
    return box


def _private_sqlite_file(path: Path, data_dir: Path) -> None:
    # The data dir is ours: always 0700. Another directory the URL names is only made 0700
    # when we create it. The file is created 0600 before SQLite opens it, and its -wal and
    # -shm inherit that mode; existing ones are tightened.
    if data_dir.resolve() in (path.parent.resolve(), *path.parent.resolve().parents):
        private_dir(data_dir)
    private_dir(path.parent, tighten_existing=path.parent.resolve() == data_dir.resolve())
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file == path or file.exists():
            private_file(file)


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
    # Read-only sessions say so (DEFERRED): they never write, so they never need the lock.
    mode = conn.get_execution_options().get(_SQLITE_BEGIN, "IMMEDIATE")
    conn.exec_driver_sql(f"BEGIN {'DEFERRED' if mode == 'DEFERRED' else 'IMMEDIATE'}")


def read_only_engine(engine: Engine) -> Engine:
    """``engine`` for reads only: its transactions begin DEFERRED on SQLite (no write lock).

    Writing through it still works, but may fail with "database is locked" when another
    writer committed since the transaction's first read: use it for reads only.
    """
    return engine.execution_options(**{_SQLITE_BEGIN: "DEFERRED"})


def make_session_factory(engine: Engine, *, read_only: bool = False) -> SessionFactory:
    """Sessions on ``engine``; ``read_only`` ones begin DEFERRED on SQLite (see
    :func:`read_only_engine`), so a read never waits for a writer."""
    bind = read_only_engine(engine) if read_only else engine
    return sessionmaker(bind, expire_on_commit=False)


def check_reachable(engine: Engine) -> None:
    """Raise :class:`StoreUnavailableError` unless a trivial query succeeds."""
    try:
        with read_only_engine(engine).connect() as conn:
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
