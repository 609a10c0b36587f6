"""On-call: incidents grouped from alerts, their timeline, contact methods and notification
rules, schedules (layers, members, overrides), escalation policies, routes, silences and the
notification outbox; a timezone per user.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

Why: alerts reach a person. An incident groups the alerts of one grouping key while it is
open; the partial unique index on ``incidents.group_hash`` (open states only) makes "one open
incident per key" hold under concurrent webhook deliveries. Every message is an outbox row
(``notifications``) written in the same transaction as the escalation step that decided it,
with a unique idempotency key, so a crash between deciding and sending loses nothing and a
retry cannot page twice. Layer members and overrides reference users with ``RESTRICT``: a
user on a schedule cannot be deleted from under it. Contact-method secrets (Slack URLs,
PagerDuty keys, webhook secrets) are stored Fernet-encrypted, never in plain text.
Locks: creates twelve tables; adds ``users.timezone`` with a constant default (a
metadata-only change on PostgreSQL 11+, a table copy on SQLite's batch mode).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def _stamps() -> list[sa.Column[object]]:
    return [sa.Column("created", TS, nullable=False), sa.Column("updated", TS, nullable=False)]


def _fk(cols: str, table: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([cols], [f"{table}.id"], ondelete=ondelete)


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("timezone", sa.String(length=64), nullable=False, server_default="UTC")
        )
    op.create_table(
        "contact_methods",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("secret_enc", sa.Text(), nullable=True),
        *_stamps(),
        _fk("user_id", "users", "CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "name"),
    )
    op.create_index(op.f("ix_contact_methods__user_id"), "contact_methods", ["user_id"])
    op.create_table(
        "notification_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("contact_method_id", sa.Integer(), nullable=False),
        sa.Column("delay_s", sa.Integer(), nullable=False),
        _fk("user_id", "users", "CASCADE"),
        _fk("contact_method_id", "contact_methods", "CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "contact_method_id", "delay_s"),
    )
    op.create_index(op.f("ix_notification_rules__user_id"), "notification_rules", ["user_id"])
    op.create_index(
        op.f("ix_notification_rules__contact_method_id"),
        "notification_rules",
        ["contact_method_id"],
    )
    op.create_table(
        "oncall_schedules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "oncall_layers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("start_local", sa.String(length=32), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.Column("restrictions", JSON, nullable=False),
        _fk("schedule_id", "oncall_schedules", "CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("schedule_id", "position"),
    )
    op.create_index(op.f("ix_oncall_layers__schedule_id"), "oncall_layers", ["schedule_id"])
    op.create_table(
        "oncall_layer_members",
        sa.Column("layer_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        _fk("layer_id", "oncall_layers", "CASCADE"),
        _fk("user_id", "users", "RESTRICT"),
        sa.PrimaryKeyConstraint("layer_id", "position"),
    )
    op.create_index(op.f("ix_oncall_layer_members__user_id"), "oncall_layer_members", ["user_id"])
    op.create_table(
        "oncall_overrides",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("replaces_user_id", sa.Integer(), nullable=True),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("ends_at", TS, nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        _fk("schedule_id", "oncall_schedules", "CASCADE"),
        _fk("user_id", "users", "RESTRICT"),
        _fk("replaces_user_id", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_oncall_overrides__schedule_id"), "oncall_overrides", ["schedule_id"])
    op.create_index(op.f("ix_oncall_overrides__user_id"), "oncall_overrides", ["user_id"])
    op.create_table(
        "escalation_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("steps", JSON, nullable=False),
        sa.Column("repeat", sa.Integer(), nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "oncall_routes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("matchers", JSON, nullable=False),
        sa.Column("policy_id", sa.Integer(), nullable=True),
        sa.Column("group_by", JSON, nullable=False),
        sa.Column("auto_resolve", sa.Boolean(), nullable=False),
        *_stamps(),
        _fk("policy_id", "escalation_policies", "RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_index(op.f("ix_oncall_routes__position"), "oncall_routes", ["position"])
    op.create_table(
        "oncall_silences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("matchers", JSON, nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("ends_at", TS, nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_oncall_silences__ends_at"), "oncall_silences", ["ends_at"])
    op.create_table(
        "incidents",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("group_hash", sa.String(length=64), nullable=False),
        sa.Column("group_labels", JSON, nullable=False),
        sa.Column("labels", JSON, nullable=False),
        sa.Column("annotations", JSON, nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("engine_id", sa.Integer(), nullable=True),
        sa.Column("route_id", sa.Integer(), nullable=True),
        sa.Column("policy_id", sa.Integer(), nullable=True),
        sa.Column("auto_resolve", sa.Boolean(), nullable=False),
        sa.Column("escalation_step", sa.Integer(), nullable=False),
        sa.Column("escalation_loop", sa.Integer(), nullable=False),
        sa.Column("next_escalation_at", TS, nullable=True),
        sa.Column("snoozed_until", TS, nullable=True),
        sa.Column("triggered_at", TS, nullable=False),
        sa.Column("acknowledged_at", TS, nullable=True),
        sa.Column("acknowledged_by", sa.String(length=128), nullable=True),
        sa.Column("resolved_at", TS, nullable=True),
        *_stamps(),
        _fk("engine_id", "engines", "SET NULL"),
        _fk("route_id", "oncall_routes", "SET NULL"),
        _fk("policy_id", "escalation_policies", "SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_incidents__group_hash"), "incidents", ["group_hash"])
    op.create_index(op.f("ix_incidents__state"), "incidents", ["state"])
    op.create_index("ix_incidents__next_escalation_at", "incidents", ["next_escalation_at"])
    op.create_index(
        "uq_incidents__one_open_per_group",
        "incidents",
        ["group_hash"],
        unique=True,
        sqlite_where=sa.text("state != 'resolved'"),
        postgresql_where=sa.text("state != 'resolved'"),
    )
    op.create_table(
        "incident_alerts",
        sa.Column("incident_id", BIG_ID, nullable=False),
        sa.Column("alert_id", BIG_ID, nullable=False),
        _fk("incident_id", "incidents", "CASCADE"),
        _fk("alert_id", "alerts", "CASCADE"),
        sa.PrimaryKeyConstraint("incident_id", "alert_id"),
    )
    op.create_index(op.f("ix_incident_alerts__alert_id"), "incident_alerts", ["alert_id"])
    op.create_table(
        "incident_events",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("incident_id", BIG_ID, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("detail", JSON, nullable=False),
        _fk("incident_id", "incidents", "CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_incident_events__incident_id"), "incident_events", ["incident_id"])
    op.create_table(
        "notifications",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("incident_id", BIG_ID, nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("contact_method_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("retry_at", TS, nullable=False),
        sa.Column("claimed_at", TS, nullable=True),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("step", sa.Integer(), nullable=True),
        *_stamps(),
        _fk("incident_id", "incidents", "CASCADE"),
        _fk("user_id", "users", "SET NULL"),
        _fk("contact_method_id", "contact_methods", "SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    op.create_index(op.f("ix_notifications__incident_id"), "notifications", ["incident_id"])
    op.create_index("ix_notifications__state_retry_at", "notifications", ["state", "retry_at"])


def downgrade() -> None:
    for table in (
        "notifications",
        "incident_events",
        "incident_alerts",
        "incidents",
        "oncall_silences",
        "oncall_routes",
        "escalation_policies",
        "oncall_overrides",
        "oncall_layer_members",
        "oncall_layers",
        "oncall_schedules",
        "notification_rules",
        "contact_methods",
    ):
        op.drop_table(table)
    with op.batch_alter_table("users") as batch:
        batch.drop_column("timezone")
