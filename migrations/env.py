"""Alembic environment.

Our version table is ``cp_alembic_version``: Optuna's RDB storage keeps its own Alembic history
in the default ``alembic_version`` table of the same database, and the two must never share a
row. Optuna's tables are kept out of autogenerate for the same reason.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection

from controlplane.settings import Settings
from controlplane.store import models  # noqa: F401  (registers every table on the metadata)
from controlplane.store.base import Base
from controlplane.store.database import make_engine
from controlplane.store.schema import VERSION_TABLE

OPTUNA_TABLES = frozenset(
    {
        "studies",
        "study_directions",
        "study_user_attributes",
        "study_system_attributes",
        "trials",
        "trial_user_attributes",
        "trial_system_attributes",
        "trial_params",
        "trial_values",
        "trial_intermediate_values",
        "trial_heartbeats",
        "version_info",
        "alembic_version",
    }
)


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    return not (type_ == "table" and name in OPTUNA_TABLES)


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        include_object=include_object,
        compare_type=True,
        transaction_per_migration=True,
        **kwargs,
    )


def run_offline() -> None:
    url = context.config.get_main_option("sqlalchemy.url") or Settings().resolved_database_url
    _configure(url=url, literal_binds=True, render_as_batch=url.startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()


def _run_with(connection: Connection) -> None:
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run_with(connection)
        return
    # Invoked as plain `alembic ...`: this file is then the edge, so it builds the settings.
    engine = make_engine(Settings())
    try:
        with engine.connect() as conn:
            _run_with(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
