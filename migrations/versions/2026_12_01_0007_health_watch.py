"""Health watch: per-engine overrides of the inference watch and its persisted state.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

Why: after a change commits, the scheduler sends the engine a real inference request on a
schedule and rolls it back after repeated failures. Interval, failures and window are
settings with per-engine overrides (NULL: the setting); the watch's state (consecutive
failures, the committed rollout being watched, the last check and its error, the rollback
it started) is stored so a new leader carries on counting where the old one stopped, and
``cplane engine watch`` shows it. One row per engine, removed with the engine.
Locks: creates one table only; nothing existing is touched.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "health_watches",
        sa.Column("engine_id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=True),
        sa.Column("interval_s", sa.Float(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=True),
        sa.Column("window_s", sa.Float(), nullable=True),
        sa.Column("watched_rollout_id", sa.Integer(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_check_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_ok_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("rollback_rollout_id", sa.Integer(), nullable=True),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["engine_id"],
            ["engines.id"],
            name=op.f("fk_health_watches__engine_id__engines"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["watched_rollout_id"],
            ["rollouts.id"],
            name=op.f("fk_health_watches__watched_rollout_id__rollouts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["rollback_rollout_id"],
            ["rollouts.id"],
            name=op.f("fk_health_watches__rollback_rollout_id__rollouts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("engine_id", name=op.f("pk_health_watches")),
    )


def downgrade() -> None:
    op.drop_table("health_watches")
