"""Load tests: one row per sweep and one per step.

Revision ID: 0013
Revises: 0009
Create Date: 2026-12-01

Why: ``cplane loadtest`` draws an engine's performance-decay curve (throughput and latency
against concurrency or offered rate) and finds its knee; the regression gate compares a new
sweep with a stored one step by step, so the steps are stored as typed columns, not a JSON
blob, and a run's steps go with it (and with its engine). ``updated`` of a running load
test is its lease.
Locks: creates two tables only; nothing existing is touched.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "load_tests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("engine_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("spec", JSON, nullable=False),
        sa.Column("result", JSON, nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["engine_id"],
            ["engines.id"],
            name=op.f("fk_load_tests__engine_id__engines"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_load_tests")),
    )
    op.create_index(op.f("ix_load_tests__engine_id"), "load_tests", ["engine_id"])
    op.create_table(
        "load_test_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("load_test_id", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("offered", sa.Float(), nullable=False),
        sa.Column("throughput_rps", sa.Float(), nullable=False),
        sa.Column("output_tokens_per_s", sa.Float(), nullable=False),
        sa.Column("p50_ms", sa.Float(), nullable=True),
        sa.Column("p90_ms", sa.Float(), nullable=True),
        sa.Column("p99_ms", sa.Float(), nullable=True),
        sa.Column("ttft_p50_ms", sa.Float(), nullable=True),
        sa.Column("ttft_p99_ms", sa.Float(), nullable=True),
        sa.Column("tpot_ms", sa.Float(), nullable=True),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("error_rate", sa.Float(), nullable=False),
        sa.Column("meets_slo", sa.Boolean(), nullable=False),
        sa.Column("stable", sa.Boolean(), nullable=False),
        sa.Column("windows", sa.Integer(), nullable=False),
        sa.Column("throughput_noise", sa.Float(), nullable=False),
        sa.Column("p99_noise", sa.Float(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["load_test_id"],
            ["load_tests.id"],
            name=op.f("fk_load_test_steps__load_test_id__load_tests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_load_test_steps")),
        sa.UniqueConstraint(
            "load_test_id", "index", name=op.f("uq_load_test_steps__load_test_id_index")
        ),
    )


def downgrade() -> None:
    op.drop_table("load_test_steps")
    op.drop_index(op.f("ix_load_tests__engine_id"), table_name="load_tests")
    op.drop_table("load_tests")
