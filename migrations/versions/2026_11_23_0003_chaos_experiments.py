"""Chaos experiments.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

Why: every chaos experiment is recorded with its fault, target, the mechanism that carried it
(netem or a fallback), the counters proving it was active and the guard's reaction, so a run
can be audited and compared after the fact.
Locks: creates a table only; nothing existing is touched.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "chaos_experiments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("engine_id", sa.Integer(), nullable=True),
        sa.Column("target", sa.String(length=256), nullable=False),
        sa.Column("fault", sa.String(length=512), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("expected", sa.String(length=16), nullable=False),
        sa.Column("hypothesis", JSON, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("mechanisms", JSON, nullable=False),
        sa.Column("result", JSON, nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["engine_id"],
            ["engines.id"],
            name=op.f("fk_chaos_experiments__engine_id__engines"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chaos_experiments")),
    )
    with op.batch_alter_table("chaos_experiments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_chaos_experiments__engine_id"), ["engine_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("chaos_experiments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chaos_experiments__engine_id"))

    op.drop_table("chaos_experiments")
