"""Chaos experiment outcomes: failed requests and time in SLO violation.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

Why: an experiment is judged by what the fault cost the engine, not only by whether the
guard reacted; the failed requests and the seconds the engine's SLOs were violated during
the fault are columns so experiments can be compared and filtered without reading JSON.
Locks: adds two nullable columns without defaults (a catalogue change on PostgreSQL, no
table rewrite); existing rows read NULL, meaning "not measured".
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("chaos_experiments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("failed_requests", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("slo_violation_s", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chaos_experiments", schema=None) as batch_op:
        batch_op.drop_column("slo_violation_s")
        batch_op.drop_column("failed_requests")
