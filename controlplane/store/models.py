"""ORM rows. Rows stay inside the store layer: callers get pydantic read models or dataclasses.

Relationships are ``lazy="raise"`` so an accidental N+1 query fails in tests instead of
slowing production. Invariants that must hold under concurrency live in the database
(unique and partial unique indexes), not in application checks that can race.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import BigInteger
from sqlalchemy import Boolean
from sqlalchemy import Float
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from controlplane.store.base import Base
from controlplane.store.base import Timestamped
from controlplane.store.base import utcnow

JSONType = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")

ACTIVE_ROLLOUT_STATES = ("pending", "applying", "baking")
_ACTIVE_ROLLOUT_SQL = "state IN ('pending', 'applying', 'baking')"


class UserRow(Timestamped, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # IANA zone the person's messages show times in (on-call).
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")

    tokens: Mapped[list[ApiTokenRow]] = relationship(
        back_populates="user", lazy="raise", cascade="all, delete-orphan"
    )


class ApiTokenRow(Base):
    """An API token; only its SHA-256 is stored (the secret is shown once, at creation)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]

    user: Mapped[UserRow] = relationship(back_populates="tokens", lazy="raise")


class EngineRow(Timestamped, Base):
    __tablename__ = "engines"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(String(2048))
    metrics_url: Mapped[str | None] = mapped_column(String(2048))
    # Fernet ciphertext (controlplane.store.secrets); decrypted only to call the engine's
    # admin API, never returned by the read models.
    admin_token_enc: Mapped[str | None] = mapped_column(Text)
    approval_mode: Mapped[str] = mapped_column(String(16), default="auto")
    description: Mapped[str] = mapped_column(Text, default="")
    labels: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)

    configs: Mapped[list[EngineConfigRow]] = relationship(
        back_populates="engine", lazy="raise", cascade="all, delete-orphan", passive_deletes=True
    )


class EngineConfigRow(Base):
    """One version of an engine's configuration; at most one per engine is last known good."""

    __tablename__ = "engine_configs"
    __table_args__ = (
        UniqueConstraint("engine_id", "version"),
        Index(
            "uq_engine_configs__one_lkg_per_engine",
            "engine_id",
            unique=True,
            sqlite_where=text("is_last_known_good"),
            postgresql_where=text("is_last_known_good"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    engine_id: Mapped[int] = mapped_column(ForeignKey("engines.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    config: Mapped[dict[str, Any]] = mapped_column(JSONType)
    source: Mapped[str] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(128))
    created: Mapped[datetime] = mapped_column(default=utcnow)
    is_last_known_good: Mapped[bool] = mapped_column(Boolean, default=False)

    engine: Mapped[EngineRow] = relationship(back_populates="configs", lazy="raise")


class RolloutRow(Timestamped, Base):
    """Every change to a live engine, with the evidence that decided its fate."""

    __tablename__ = "rollouts"
    __table_args__ = (
        # One rollout in flight per engine, enforced where it cannot race.
        Index(
            "uq_rollouts__one_active_per_engine",
            "engine_id",
            unique=True,
            sqlite_where=text(_ACTIVE_ROLLOUT_SQL),
            postgresql_where=text(_ACTIVE_ROLLOUT_SQL),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    engine_id: Mapped[int] = mapped_column(
        ForeignKey("engines.id", ondelete="CASCADE"), index=True
    )
    from_config_id: Mapped[int | None] = mapped_column(
        ForeignKey("engine_configs.id", ondelete="SET NULL")
    )
    to_config_id: Mapped[int | None] = mapped_column(
        ForeignKey("engine_configs.id", ondelete="SET NULL")
    )
    reason: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None]
    # Renewed by the process watching the rollout; a start-up reconcile takes over only
    # rollouts whose heartbeat has gone stale, never one another process is still guarding.
    heartbeat_at: Mapped[datetime | None]


class SeriesRow(Base):
    """One time series: a source, a canonical metric name and a label set.

    Samples and rollups refer to a series by its integer id, so a point is three narrow
    columns instead of three strings repeated on every row: half the bytes per row, and the
    bulk insert paths run two to three times faster (docs/benchmarks.md). Series are never
    deleted, so an id, once committed, names the same series for as long as the store lives
    and every process may cache it.
    """

    __tablename__ = "series"
    __table_args__ = (
        UniqueConstraint("source", "metric", "labels"),
        Index(None, "metric", "source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(200))
    metric: Mapped[str] = mapped_column(String(200))
    # Canonical JSON text (sorted keys): compares exactly, which series identity needs.
    labels: Mapped[str] = mapped_column(Text, default="{}")


class SampleRow(Base):
    """One point of a time series; ``ts`` is Unix seconds as a float.

    No primary key or foreign key in the database: either would cost every bulk insert a
    lookup for nothing (a series is never deleted, and two points at one instant are
    harmless). The mapper's key is (series, ts) for the ORM's sake only.
    """

    __tablename__ = "samples"
    # One index, time first. Every batch carries one timestamp, so its entries land in one
    # place at the end of the B-tree; series-first keys scatter a batch across every leaf
    # page, and SQLite's insert rate fell eightfold as the table grew to 500k rows
    # (docs/benchmarks.md). Queries read a time range and filter series inside the index.
    __table_args__ = (Index(None, "ts", "series_id"),)

    series_id: Mapped[int] = mapped_column(Integer)
    ts: Mapped[float] = mapped_column(Float)
    value: Mapped[float] = mapped_column(Float)

    __mapper_args__ = {"primary_key": [series_id, ts]}


class SloRow(Timestamped, Base):
    __tablename__ = "slos"
    __table_args__ = (UniqueConstraint("engine_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    engine_id: Mapped[int] = mapped_column(ForeignKey("engines.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    quantile: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    window_s: Mapped[float] = mapped_column(Float)


class TuningRunRow(Timestamped, Base):
    __tablename__ = "tuning_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    engine_id: Mapped[int] = mapped_column(
        ForeignKey("engines.id", ondelete="CASCADE"), index=True
    )
    study_name: Mapped[str] = mapped_column(String(128), unique=True)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    objective: Mapped[str] = mapped_column(String(32))
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    actor: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class AuditEventRow(Base):
    """Append-only record of every mutation: who did what to which object, and its details."""

    __tablename__ = "audit_events"
    __table_args__ = (Index(None, "target_type", "target_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(128))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class SampleRollupRow(Base):
    """One minute of one series, aggregated from raw samples before they expire.

    ``last`` keeps counters usable (cumulative value at the end of the minute, so increases
    across minutes survive); ``min``/``max``/``sum``/``count`` keep gauges usable. Unique per
    (series, minute) so re-running the rollup merges instead of duplicating.
    """

    __tablename__ = "sample_rollups"
    __table_args__ = (Index(None, "series_id", "ts", unique=True), Index(None, "ts"))

    series_id: Mapped[int] = mapped_column(Integer)
    ts: Mapped[float] = mapped_column(Float)
    last_ts: Mapped[float] = mapped_column(Float)
    last: Mapped[float] = mapped_column(Float)
    min: Mapped[float] = mapped_column(Float)
    max: Mapped[float] = mapped_column(Float)
    sum: Mapped[float] = mapped_column(Float)
    count: Mapped[int] = mapped_column(Integer)

    __mapper_args__ = {"primary_key": [series_id, ts]}


class IngestBatchRow(Base):
    """Idempotency keys of ingested batches: a retried push finds its key and stores nothing."""

    __tablename__ = "ingest_batches"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    received: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    samples: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(128))


class ChaosExperimentRow(Timestamped, Base):
    """One chaos experiment: the fault, where it ran, which mechanism carried it, the proof it
    was active (``tc -s`` / nft counters) and what the guard did meanwhile."""

    __tablename__ = "chaos_experiments"

    id: Mapped[int] = mapped_column(primary_key=True)
    engine_id: Mapped[int | None] = mapped_column(
        ForeignKey("engines.id", ondelete="SET NULL"), index=True
    )
    target: Mapped[str] = mapped_column(String(256))
    fault: Mapped[str] = mapped_column(String(512))
    duration_s: Mapped[float] = mapped_column(Float)
    expected: Mapped[str] = mapped_column(String(16), default="any")
    hypothesis: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    state: Mapped[str] = mapped_column(String(16), default="running")
    mechanisms: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    actor: Mapped[str] = mapped_column(String(128))
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # What the fault cost the engine; NULL when not measured (no engine, or no samples).
    failed_requests: Mapped[int | None] = mapped_column(Integer)
    slo_violation_s: Mapped[float | None] = mapped_column(Float)


class SchedulerLeaseRow(Base):
    """A named lease (the scheduler's leader lease): who holds it until when, and the fencing
    token, raised by one on every acquisition, that every job write compares with its own."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(128))
    token: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    acquired_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]


class JobRow(Timestamped, Base):
    """A system job's definition (retention, sweeps, reconcile), editable through the API."""

    __tablename__ = "jobs"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    interval_s: Mapped[float] = mapped_column(Float)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    updated_by: Mapped[str] = mapped_column(String(128))


class ScheduleRow(Timestamped, Base):
    """A scheduled tuning run: an engine, a cron expression in an IANA timezone, the tuning
    spec (the body of ``POST /tuning-runs``) and the rules that skip a firing."""

    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    engine_id: Mapped[int] = mapped_column(
        ForeignKey("engines.id", ondelete="CASCADE"), index=True
    )
    cron: Mapped[str] = mapped_column(String(128))
    timezone: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    skip: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    paused: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_by: Mapped[str] = mapped_column(String(128))


class JobRunRow(Timestamped, Base):
    """One firing of a job: started -> done | failed, or skipped with a reason code.

    Unique per (job, scheduled time): whichever process fires a given time first records it,
    and any other attempt finds the row and does nothing.
    """

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "scheduled_for"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(96))
    schedule_id: Mapped[int | None] = mapped_column(
        ForeignKey("schedules.id", ondelete="SET NULL"), index=True
    )
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    scheduled_for: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    fence_token: Mapped[int | None] = mapped_column(BigInteger)
    holder: Mapped[str | None] = mapped_column(String(128))
    tuning_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("tuning_runs.id", ondelete="SET NULL")
    )


class HealthWatchRow(Timestamped, Base):
    """An engine's health watch: overrides of the settings (NULL: the setting's default) and
    the watch's state, so a new leader goes on counting where the old one stopped."""

    __tablename__ = "health_watches"

    engine_id: Mapped[int] = mapped_column(
        ForeignKey("engines.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    enabled: Mapped[bool | None] = mapped_column(Boolean)
    interval_s: Mapped[float | None] = mapped_column(Float)
    failures: Mapped[int | None] = mapped_column(Integer)
    window_s: Mapped[float | None] = mapped_column(Float)
    # The committed rollout the counts below belong to; a newer commit starts afresh.
    watched_rollout_id: Mapped[int | None] = mapped_column(
        ForeignKey("rollouts.id", ondelete="SET NULL")
    )
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_check_at: Mapped[datetime | None]
    last_ok_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    rollback_rollout_id: Mapped[int | None] = mapped_column(
        ForeignKey("rollouts.id", ondelete="SET NULL")
    )
    updated_by: Mapped[str] = mapped_column(String(128))


class AlertRow(Timestamped, Base):
    """One alert, deduplicated by fingerprint, from Alertmanager, the guard or a detector.

    ``state`` is ``firing`` or ``resolved`` (the ``alert`` lifecycle); ``engine_id`` is set
    when the alert's ``engine`` label names a registered engine, and cleared (the alert kept)
    when that engine is removed.
    """

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(128), unique=True)
    alertname: Mapped[str] = mapped_column(String(200), index=True)
    engine_id: Mapped[int | None] = mapped_column(
        ForeignKey("engines.id", ondelete="SET NULL"), index=True
    )
    labels: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    annotations: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    state: Mapped[str] = mapped_column(String(16), index=True)
    source: Mapped[str] = mapped_column(String(16))
    group_key: Mapped[str | None] = mapped_column(Text)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    last_received_at: Mapped[datetime]
    generator_url: Mapped[str | None] = mapped_column(Text)


class AlertEventRow(Base):
    """One move of an alert (first firing, resolved, fired again), with an excerpt of the
    notification that carried it."""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("alerts.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class ContactMethodRow(Timestamped, Base):
    """How a person is reached. ``address`` is what may be shown (an email address, a
    masked URL); the secret part (a Slack webhook URL, a PagerDuty integration key, a webhook
    URL and its signing secret) is Fernet ciphertext in ``secret_enc``."""

    __tablename__ = "contact_methods"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(320))
    secret_enc: Mapped[str | None] = mapped_column(Text)


class NotificationRuleRow(Base):
    """Reach ``user_id`` through ``contact_method_id`` ``delay_s`` after a step pages them."""

    __tablename__ = "notification_rules"
    __table_args__ = (UniqueConstraint("user_id", "contact_method_id", "delay_s"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    contact_method_id: Mapped[int] = mapped_column(
        ForeignKey("contact_methods.id", ondelete="CASCADE"), index=True
    )
    delay_s: Mapped[int] = mapped_column(Integer)


class OncallTeamRow(Timestamped, Base):
    """A team an escalation step can page as a whole: every member at once."""

    __tablename__ = "oncall_teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)


class OncallTeamMemberRow(Base):
    # Deleting a user takes them out of their teams (cascade): a team pages whoever is in
    # it, so it loses no slot the way a schedule would.
    __tablename__ = "oncall_team_members"

    team_id: Mapped[int] = mapped_column(
        ForeignKey("oncall_teams.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class OncallScheduleRow(Timestamped, Base):
    """An on-call schedule; its layers and overrides are rows of their own so that a user on
    a schedule cannot be deleted from under it (the foreign keys restrict)."""

    __tablename__ = "oncall_schedules"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    timezone: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")


class OncallLayerRow(Base):
    __tablename__ = "oncall_layers"
    __table_args__ = (UniqueConstraint("schedule_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int] = mapped_column(
        ForeignKey("oncall_schedules.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    # Wall-clock time of the first handoff in the schedule's zone, ISO without offset.
    start_local: Mapped[str] = mapped_column(String(32))
    length: Mapped[int] = mapped_column(Integer)
    restrictions: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)


class OncallLayerMemberRow(Base):
    __tablename__ = "oncall_layer_members"

    layer_id: Mapped[int] = mapped_column(
        ForeignKey("oncall_layers.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)


class OncallOverrideRow(Base):
    __tablename__ = "oncall_overrides"

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int] = mapped_column(
        ForeignKey("oncall_schedules.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    replaces_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(128))


class EscalationPolicyRow(Timestamped, Base):
    """Ordered steps as JSON (``[{"targets": [{"kind": "schedule", "id": 1}], "delay_s":
    300}]``); targets are checked to exist when the policy is written."""

    __tablename__ = "escalation_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    repeat: Mapped[int] = mapped_column(Integer, default=0)


class OncallRouteRow(Timestamped, Base):
    """Alerts whose labels match ``matchers`` go to ``policy_id``, grouped by ``group_by``;
    routes are tried by ``position``, the first match wins."""

    __tablename__ = "oncall_routes"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    position: Mapped[int] = mapped_column(Integer, index=True)
    matchers: Mapped[list[str]] = mapped_column(JSONType, default=list)
    policy_id: Mapped[int | None] = mapped_column(
        ForeignKey("escalation_policies.id", ondelete="RESTRICT")
    )
    group_by: Mapped[list[str]] = mapped_column(JSONType, default=list)
    auto_resolve: Mapped[bool] = mapped_column(Boolean, default=True)


class SilenceRow(Base):
    """A maintenance window (no matchers: everything) or a silence (matchers): incidents
    that match while it is active are opened and recorded, their pages written as
    ``suppressed`` instead of sent."""

    __tablename__ = "oncall_silences"

    id: Mapped[int] = mapped_column(primary_key=True)
    matchers: Mapped[list[str]] = mapped_column(JSONType, default=list)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime] = mapped_column(index=True)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(128))
    created: Mapped[datetime] = mapped_column(default=utcnow)


class IncidentRow(Timestamped, Base):
    """Alerts that share a grouping key while open; at most one open incident per key
    (a partial unique index, so two concurrent deliveries cannot open two)."""

    __tablename__ = "incidents"
    __table_args__ = (
        Index(
            "uq_incidents__one_open_per_group",
            "group_hash",
            unique=True,
            sqlite_where=text("state != 'resolved'"),
            postgresql_where=text("state != 'resolved'"),
        ),
        Index("ix_incidents__next_escalation_at", "next_escalation_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    group_hash: Mapped[str] = mapped_column(String(64), index=True)
    group_labels: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    labels: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    annotations: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    title: Mapped[str] = mapped_column(String(500))
    state: Mapped[str] = mapped_column(String(16), index=True)
    engine_id: Mapped[int | None] = mapped_column(ForeignKey("engines.id", ondelete="SET NULL"))
    route_id: Mapped[int | None] = mapped_column(
        ForeignKey("oncall_routes.id", ondelete="SET NULL")
    )
    policy_id: Mapped[int | None] = mapped_column(
        ForeignKey("escalation_policies.id", ondelete="SET NULL")
    )
    auto_resolve: Mapped[bool] = mapped_column(Boolean, default=True)
    escalation_step: Mapped[int] = mapped_column(Integer, default=0)
    escalation_loop: Mapped[int] = mapped_column(Integer, default=0)
    next_escalation_at: Mapped[datetime | None]
    snoozed_until: Mapped[datetime | None]
    triggered_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    resolved_at: Mapped[datetime | None]


class IncidentAlertRow(Base):
    __tablename__ = "incident_alerts"

    incident_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True
    )
    alert_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class IncidentEventRow(Base):
    """The incident's timeline: opened, alerts added, escalation steps, pages (sent,
    failed, suppressed), acks, notes, resolve, reopen."""

    __tablename__ = "incident_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class NotificationRow(Timestamped, Base):
    """The outbox: one message to one contact method, written in the transaction that
    decided it, delivered by the sender (``notification`` lifecycle)."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications__state_retry_at", "state", "retry_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    contact_method_id: Mapped[int | None] = mapped_column(
        ForeignKey("contact_methods.id", ondelete="SET NULL")
    )
    channel: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    retry_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    step: Mapped[int | None] = mapped_column(Integer)


class UiSessionRow(Base):
    """A signed-in browser: the cookie carries a secret, the store only its SHA-256. It ends
    at ``expires_at``, when revoked (sign-out), or with its user or the token it opened with."""

    __tablename__ = "ui_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_id: Mapped[int] = mapped_column(
        ForeignKey("api_tokens.id", ondelete="CASCADE"), index=True
    )
    created: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class QualityReferenceRow(Timestamped, Base):
    """An engine's recorded reference answers: the probe set, the config they were recorded
    at, and per prompt the greedy answer and its scores. One row per engine; recording
    again replaces it (the audit log keeps who recorded what, when)."""

    __tablename__ = "quality_references"

    engine_id: Mapped[int] = mapped_column(
        ForeignKey("engines.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    config: Mapped[dict[str, Any]] = mapped_column(JSONType)
    top_k: Mapped[int] = mapped_column(Integer)
    answers: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    recorded_by: Mapped[str] = mapped_column(String(128))


class LoadTestRow(Timestamped, Base):
    """One load test: the sweep asked for, where it stands, and its answer (knee, saturation,
    the regression gate's verdict). ``updated`` is its lease, stamped while it runs."""

    __tablename__ = "load_tests"

    id: Mapped[int] = mapped_column(primary_key=True)
    engine_id: Mapped[int] = mapped_column(
        ForeignKey("engines.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[str] = mapped_column(String(16), default="pending")
    kind: Mapped[str] = mapped_column(String(16))
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    actor: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class LoadTestStepRow(Base):
    """One step of a sweep: the offered load and what the engine did under it (the mean of
    the windows the stability rule accepted; latencies in milliseconds)."""

    __tablename__ = "load_test_steps"
    __table_args__ = (UniqueConstraint("load_test_id", "index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    load_test_id: Mapped[int] = mapped_column(ForeignKey("load_tests.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    offered: Mapped[float] = mapped_column(Float)
    throughput_rps: Mapped[float] = mapped_column(Float)
    output_tokens_per_s: Mapped[float] = mapped_column(Float)
    p50_ms: Mapped[float | None] = mapped_column(Float)
    p90_ms: Mapped[float | None] = mapped_column(Float)
    p99_ms: Mapped[float | None] = mapped_column(Float)
    ttft_p50_ms: Mapped[float | None] = mapped_column(Float)
    ttft_p99_ms: Mapped[float | None] = mapped_column(Float)
    tpot_ms: Mapped[float | None] = mapped_column(Float)
    requests: Mapped[int] = mapped_column(Integer)
    errors: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)
    error_rate: Mapped[float] = mapped_column(Float)
    meets_slo: Mapped[bool] = mapped_column(Boolean)
    stable: Mapped[bool] = mapped_column(Boolean)
    windows: Mapped[int] = mapped_column(Integer)
    throughput_noise: Mapped[float] = mapped_column(Float)
    p99_noise: Mapped[float] = mapped_column(Float)
    duration_s: Mapped[float] = mapped_column(Float)
    created: Mapped[datetime] = mapped_column(default=utcnow)
