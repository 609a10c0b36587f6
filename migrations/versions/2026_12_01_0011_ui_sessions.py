"""Sign-in sessions of the web UI.

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-01

Why: the browser UI signs a person in with a user name and an API token and then works
from a cookie. A cookie that carried the identity itself (a signed session) could not be
revoked before it expires; a row per session can: signing out, revoking the token it was
opened with or disabling the user ends it at once. Only the SHA-256 of the cookie's secret
is stored, like API tokens. Sessions go with their user (cascade) and with the token that
opened them (cascade), so a revoked-and-deleted token leaves no session behind.
Locks: creates one table only; nothing existing is touched.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ui_sessions",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_ui_sessions__user_id__users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["token_id"],
            ["api_tokens.id"],
            name=op.f("fk_ui_sessions__token_id__api_tokens"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ui_sessions")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_ui_sessions__secret_hash")),
    )
    op.create_index(op.f("ix_ui_sessions__user_id"), "ui_sessions", ["user_id"])
    op.create_index(op.f("ix_ui_sessions__token_id"), "ui_sessions", ["token_id"])


def downgrade() -> None:
    op.drop_table("ui_sessions")
