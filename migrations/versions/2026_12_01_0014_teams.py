"""On-call teams: a name and its members (existing users).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01

Why: an escalation step may page every member of a team, not only the on-call of a schedule
or one named user; the members are rows (not a JSON list in the policy) so that deleting a
user takes them out of every team in the same statement (ON DELETE CASCADE) and a team's
membership is one primary key per (team, user).
Locks: creates two tables only; nothing existing is touched.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "oncall_teams",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oncall_teams")),
        sa.UniqueConstraint("name", name=op.f("uq_oncall_teams__name")),
    )
    op.create_table(
        "oncall_team_members",
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["oncall_teams.id"],
            name=op.f("fk_oncall_team_members__team_id__oncall_teams"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_oncall_team_members__user_id__users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("team_id", "user_id", name=op.f("pk_oncall_team_members")),
    )
    op.create_index(op.f("ix_oncall_team_members__user_id"), "oncall_team_members", ["user_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_oncall_team_members__user_id"), table_name="oncall_team_members")
    op.drop_table("oncall_team_members")
    op.drop_table("oncall_teams")
