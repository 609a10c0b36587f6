"""Quality references: the answers a config change is compared with.

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-01

Why: the guard and the tuner judge a precision or config change by whether the model still
answers like it did. The probe's reference answers (greedy tokens and their top-k scores
per prompt of the probe set) and the config they were recorded at are stored per engine,
so every control plane replica compares against the same recording and it survives a
restart. One row per engine, removed with the engine. The quality spec itself
(``quality>=0.98``) is an ordinary row of ``slos``.
Locks: creates one table only; nothing existing is touched.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "quality_references",
        sa.Column("engine_id", sa.Integer(), nullable=False),
        sa.Column("config", JSON, nullable=False),
        sa.Column("top_k", sa.Integer(), nullable=False),
        sa.Column("answers", JSON, nullable=False),
        sa.Column("recorded_by", sa.String(length=128), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["engine_id"],
            ["engines.id"],
            name=op.f("fk_quality_references__engine_id__engines"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("engine_id", name=op.f("pk_quality_references")),
    )


def downgrade() -> None:
    op.drop_table("quality_references")
