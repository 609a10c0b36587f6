"""Sample rollups and ingest idempotency keys.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Why: raw samples expire after a retention window; one-minute rollups keep the history
queryable at coarse resolution. Collector agents push batches with an idempotency key so a
retried push after a lost response stores nothing twice.
Locks: creates tables only; nothing existing is touched.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "sample_rollups",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("metric", sa.String(length=200), nullable=False),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.Column("last_ts", sa.Float(), nullable=False),
        sa.Column("last", sa.Float(), nullable=False),
        sa.Column("min", sa.Float(), nullable=False),
        sa.Column("max", sa.Float(), nullable=False),
        sa.Column("sum", sa.Float(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sample_rollups")),
        sa.UniqueConstraint(
            "source",
            "metric",
            "labels",
            "ts",
            name=op.f("uq_sample_rollups__source_metric_labels_ts"),
        ),
    )
    with op.batch_alter_table("sample_rollups", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sample_rollups__metric_source_ts"),
            ["metric", "source", "ts"],
            unique=False,
        )

    op.create_table(
        "ingest_batches",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("received", sa.DateTime(timezone=True), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_ingest_batches")),
    )
    with op.batch_alter_table("ingest_batches", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ingest_batches__received"), ["received"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("ingest_batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ingest_batches__received"))

    op.drop_table("ingest_batches")
    with op.batch_alter_table("sample_rollups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sample_rollups__metric_source_ts"))

    op.drop_table("sample_rollups")
