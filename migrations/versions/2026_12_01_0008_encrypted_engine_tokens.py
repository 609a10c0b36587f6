"""Engine admin tokens encrypted at rest.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

Why: ``engines.admin_token`` held each engine's admin token in plain text, so anyone who could
read the store (a backup, a world-readable SQLite file) could reconfigure every engine. The
column is replaced by ``admin_token_enc``, Fernet ciphertext under the server's key
(``CP_SECRET_KEY`` or the key file, created on first use); existing tokens are encrypted on
the way. The downgrade decrypts them back, so it needs the same key.
Locks: adds and drops a column of ``engines`` and updates its rows in one transaction (an
exclusive lock on ``engines``); the table holds one row per engine, so this takes
milliseconds. SQLite 3.35 or later (ALTER TABLE DROP COLUMN).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context
from alembic import op

from controlplane.store.database import secret_box

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _move(source: str, target: str, target_type: sa.types.TypeEngine[str], encrypt: bool) -> None:
    # Plain ADD / DROP COLUMN: SQLite has both since 3.35, and the column has no index or
    # constraint, so no table copy is needed (and the offline script works on SQLite too).
    op.add_column("engines", sa.Column(target, target_type, nullable=True))
    if context.is_offline_mode():
        # Offline SQL cannot run the cipher: say so loudly in the script it prints.
        op.execute(
            f"-- WARNING: this script does not carry engines.{source} over to {target}; "
            "run `cplane db upgrade` online to keep the engines' admin tokens"
        )
    else:
        bind = op.get_bind()
        rows = bind.execute(
            sa.text(f"SELECT id, {source} FROM engines WHERE {source} IS NOT NULL")
        ).all()
        if rows:
            box = secret_box(bind)
            for engine_id, value in rows:
                moved = box.encrypt(value) if encrypt else box.decrypt(value)
                bind.execute(
                    sa.text(f"UPDATE engines SET {target} = :v WHERE id = :id"),
                    {"v": moved, "id": engine_id},
                )
    op.drop_column("engines", source)


def upgrade() -> None:
    _move("admin_token", "admin_token_enc", sa.Text(), encrypt=True)


def downgrade() -> None:
    _move("admin_token_enc", "admin_token", sa.String(length=512), encrypt=False)
