"""The one settings object, built once at the edge (``cplane``, ``create_app``) and passed down.

Library code never reads the environment: it receives a :class:`Settings` (or the piece it
needs). Every field carries a ``description``; ``docs/settings.md`` is generated from them by
``python -m controlplane.settings`` and a test keeps it current.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings
from pydantic_settings import SettingsConfigDict

ENV_PREFIX = "CP_"
NESTED_DELIMITER = "__"


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field(
        "127.0.0.1",
        description="Address `cplane up` binds the API server to. Use 0.0.0.0 only behind a "
        "TLS-terminating proxy: tokens travel as bearer headers.",
    )
    port: int = Field(8400, ge=1, le=65535, description="Port of the API server.")
    token_ttl_days: int = Field(
        90, ge=1, le=3650, description="Lifetime of a new API token unless the caller sets one."
    )
    max_body_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        le=1024**3,
        description="Largest request body of every route but ingest, and of any request "
        "without an Authorization header; a bigger one is refused with 413 while it is read.",
    )
    max_ingest_body_bytes: int = Field(
        32 * 1024 * 1024,
        ge=1024,
        le=1024**3,
        description="Largest request body of `POST /api/v1/ingest` (a batch of samples).",
    )


class UiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_ttl_s: float = Field(
        12 * 3600,
        ge=60,
        le=30 * 86400,
        description="Lifetime of a web UI sign-in; signing out or revoking the API token it "
        "was opened with ends it sooner.",
    )
    page_size: int = Field(
        200, ge=10, le=5000, description="Rows per page of the fleet and list pages."
    )


class DatabaseSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    echo: bool = Field(False, description="Log every SQL statement (debugging only).")
    pool_size: int = Field(
        5, ge=1, le=100, description="Connections kept per process (PostgreSQL only)."
    )
    connect_timeout_s: float = Field(
        5.0, gt=0, le=120, description="How long to wait for the database before giving up."
    )


class CollectorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        False,
        description="Run the collectors (engine scrapes, GPU, host) inside the API process. "
        "Off: the API only serves what agents push and what is stored.",
    )
    scrape_interval_s: float = Field(
        5.0, ge=0.1, le=3600, description="How often each registered engine is scraped."
    )
    fast_interval_s: float = Field(
        0.5, ge=0.1, le=60, description="Scrape interval of an engine under a rollout."
    )
    scrape_timeout_s: float = Field(
        2.0, gt=0, le=60, description="Whole-scrape time limit (connect, answer and body)."
    )
    max_body_bytes: int = Field(
        10 * 1024 * 1024,
        ge=1024,
        le=1024**3,
        description="Largest /metrics body read; a bigger one fails the scrape.",
    )
    scrape_workers: int = Field(
        16, ge=1, le=256, description="Scrapes that may run at the same time."
    )
    targets_refresh_s: float = Field(
        10.0, gt=0, le=3600, description="How often the list of engines is re-read."
    )
    system_interval_s: float = Field(
        5.0, ge=0.1, le=3600, description="How often GPU (NVML) and host (psutil) are read."
    )
    gpu: bool = Field(True, description="Read GPUs through NVML when a driver is present.")
    host: bool = Field(True, description="Read host CPU and memory and engine processes.")
    buffer_samples: int = Field(
        200_000,
        ge=1000,
        le=10_000_000,
        description="Samples buffered for the store; beyond it samples are dropped and counted.",
    )
    batch_samples: int = Field(
        5000, ge=1, le=100_000, description="Samples written per store transaction."
    )
    flush_interval_s: float = Field(
        1.0, gt=0, le=60, description="Longest a sample waits in the buffer before a write."
    )
    raw_retention_s: float = Field(
        2 * 86400.0,
        ge=60,
        description="Raw samples older than this are folded into one-minute rollups.",
    )
    rollup_retention_s: float = Field(
        90 * 86400.0, ge=3600, description="One-minute rollups older than this are deleted."
    )
    push_timeout_s: float = Field(
        10.0, gt=0, le=300, description="Agent mode: time limit of one push to the server."
    )


class GuardSettings(BaseModel):
    """How every change is watched; see docs/guard.md for what each knob trades."""

    model_config = ConfigDict(extra="forbid")

    interval_s: float = Field(
        0.25, gt=0, le=10, description="Scrape and decide this often while a rollout bakes."
    )
    baseline_s: float = Field(
        5.0, ge=0, le=600, description="Traffic observed before a change to set its baseline."
    )
    warmup_s: float = Field(
        0.5,
        ge=0,
        le=300,
        description="Requests finishing this soon after a change are not judged.",
    )
    bake_s: float = Field(
        60.0, gt=0, le=86_400, description="Default bake window before a change is committed."
    )
    min_requests: int = Field(
        20, ge=1, le=1_000_000, description="Requests needed before any verdict on a change."
    )
    alpha: float = Field(
        0.01, gt=0, lt=0.5, description="Bound on the false-rollback probability per bake."
    )
    restart_s: float = Field(
        2.0, gt=0, le=600, description="A fresh sequential test starts this often (late breaches)."
    )
    confirm_s: float = Field(
        2.0,
        ge=0,
        le=600,
        description=(
            "A suspected breach must recur in requests after it within this long, or it is "
            "dismissed as a transient; 0 rolls back on the first rejection."
        ),
    )
    recur_s: float = Field(
        10.0,
        ge=0,
        le=3600,
        description=(
            "A suspicion this soon after a dismissed one is a breach (bursts that recur); 0 never."
        ),
    )
    no_data_timeout_s: float = Field(
        30.0, gt=0, le=86_400, description="Extra hold after the bake when traffic was too thin."
    )
    on_no_data: Literal["rollback", "commit"] = Field(
        "rollback", description="What an inconclusive bake ends in once the hold runs out."
    )
    unreachable_s: float = Field(
        2.0, gt=0, le=600, description="Scrapes failing this long mid-bake count as a breach."
    )
    rollback_timeout_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="Keep retrying the restore of the last known good this long.",
    )
    heartbeat_s: float = Field(
        1.0, gt=0, le=60, description="A guarding process stamps its rollouts this often."
    )
    stale_after_s: float = Field(
        10.0, gt=0, le=3600, description="A rollout unstamped this long is reconciled to LKG."
    )


class TunerSettings(BaseModel):
    """How trials are measured and judged; see docs/tuning.md for the reasoning."""

    model_config = ConfigDict(extra="forbid")

    warmup_s: float = Field(
        2.0, ge=0, le=600, description="Load after a switch that is measured and discarded."
    )
    window_s: float = Field(
        5.0, gt=0, le=3600, description="First measurement window; windows grow when unstable."
    )
    window_growth: float = Field(
        1.5, ge=1, le=4, description="Factor by which the next window grows when unstable."
    )
    min_windows: int = Field(
        3, ge=1, le=20, description="Windows that must agree before a measurement is stable."
    )
    max_windows: int = Field(
        8, ge=1, le=100, description="Give up on stability after this many windows per trial."
    )
    tolerance: float = Field(
        0.1,
        gt=0,
        le=1,
        description="Stable: the last windows' throughput and p99 within this relative spread.",
    )
    margin: float = Field(
        0.1,
        ge=0,
        lt=0.5,
        description="SLO safety margin: a trial must stay this fraction below each threshold.",
    )
    repeats: int = Field(
        3, ge=1, le=20, description="Re-measurements of the best and the default config."
    )
    sampler: Literal["auto", "tpe", "gp", "grid", "random"] = Field(
        "auto", description="Optuna sampler; auto picks the one the benchmarks chose."
    )
    bake_s: float | None = Field(
        None, gt=0, le=3600, description="Bake window of a trial's rollout; default the guard's."
    )
    lease_s: float = Field(
        2.0, gt=0, le=600, description="A running tuning run stamps its lease this often."
    )
    stale_after_s: float = Field(
        30.0, gt=0, le=86_400, description="A run whose lease is older is failed as orphaned."
    )
    max_failed_fraction: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Stop a run once this share of its trials failed or breached (min 4 trials).",
    )
    warm_start_configs: int = Field(
        3,
        ge=0,
        le=20,
        description="A new study first measures up to this many previous best configs of "
        "the engine (earlier runs' bests, a config set by hand); 0: no warm start.",
    )
    capacity_start_rps: float = Field(
        10.0,
        gt=0,
        le=100_000,
        description="Capacity objective: the first rate tried when the load names none.",
    )
    capacity_step: float = Field(
        1.5, gt=1, le=10, description="Capacity objective: factor a sustained rate is raised by."
    )
    capacity_precision: float = Field(
        0.1,
        gt=0,
        le=1,
        description="Capacity objective: bisection stops when the failing rate is this near "
        "(relative) the sustained one.",
    )
    capacity_max_probes: int = Field(
        6, ge=2, le=50, description="Capacity objective: most rates measured per trial."
    )
    live_load_tolerance: float = Field(
        0.25,
        gt=0,
        le=1,
        description="Live mode: a trial's windows count only at a load this near the baseline's.",
    )


class LoadTestSettings(BaseModel):
    """Bounds and stopping rules of load tests; see docs/loadtest.md."""

    model_config = ConfigDict(extra="forbid")

    max_concurrency: int = Field(
        1024, ge=1, le=100_000, description="Highest closed-loop concurrency a sweep may ask for."
    )
    max_rate: float = Field(
        5000.0,
        gt=0,
        le=1_000_000,
        description="Highest open-loop rate (req/s) a sweep may ask for.",
    )
    max_steps: int = Field(32, ge=1, le=1000, description="Most steps one sweep may have.")
    stop_error_rate: float = Field(
        0.5, gt=0, le=1, description="A step with this share of failed requests ends the sweep."
    )
    stop_p99_factor: float = Field(
        4.0,
        gt=1,
        le=1000,
        description="A step whose p99 is this many times the SLO ends the sweep.",
    )
    saturation_gain: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Saturated: the next step raises throughput by less than this fraction.",
    )
    noise_factor: float = Field(
        3.0,
        ge=0,
        le=100,
        description="Regression gate: a change must exceed this many times the noise measured "
        "across a step's windows.",
    )
    min_tolerance: float = Field(
        0.05, ge=0, le=1, description="Regression gate: the smallest relative change counted."
    )
    max_prompts: int = Field(
        10_000, ge=1, le=1_000_000, description="Most prompts a prompt file may hold."
    )


class ChaosSettings(BaseModel):
    """Fault injection; see docs/chaos.md for the safety rules these values enforce."""

    model_config = ConfigDict(extra="forbid")

    allowed_interfaces: list[str] = Field(
        default_factory=list,
        description="Host interfaces a chaos experiment may impair (JSON list). Empty: only "
        "network namespaces, never a host interface.",
    )
    qdisc_handle: str = Field(
        "c4a0",
        pattern=r"^[0-9a-f]{1,3}[0-9a-e]$",
        description="Reserved qdisc handle (hex major) marking a root qdisc as ours; handle+1 "
        "is used for a child netem. Nothing else may use it.",
    )
    nft_table: str = Field(
        "cplane_chaos",
        pattern=r"^[a-z][a-z0-9_]{0,31}$",
        description="Name of the nftables table (family inet) the control plane owns.",
    )
    netns_prefix: str = Field(
        "cpc-",
        pattern=r"^[a-z][a-z0-9-]{0,15}$",
        description="Prefix of network namespaces the control plane creates for topologies.",
    )
    default_duration_s: float = Field(
        30.0, gt=0, le=86_400, description="Fault duration when an experiment names none."
    )
    max_duration_s: float = Field(
        3600.0, gt=0, le=86_400, description="Longest fault an experiment may ask for."
    )
    ttl_grace_s: float = Field(
        5.0,
        ge=0,
        le=600,
        description="The watchdog removes a fault this long after its duration at the latest.",
    )
    watchdog_poll_s: float = Field(
        0.1, gt=0, le=10, description="How often the watchdog checks the injector and the TTL."
    )
    netem_limit: int = Field(
        10_000,
        ge=1000,
        le=10_000_000,
        description="netem queue limit in packets (the default 1000 drops packets at high "
        "rate x delay, which looks like loss nobody asked for).",
    )
    state_dir: Path | None = Field(
        None,
        description="Where undo records of running faults live. Empty: `<data_dir>/chaos`.",
    )


class SchedulerSettings(BaseModel):
    """Periodic jobs and the leader among replicas; see docs/scheduler.md."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        True, description="Run the scheduler in `cplane up` (leader jobs and host-local jobs)."
    )
    lease_s: float = Field(
        5.0,
        ge=0.5,
        le=300,
        description="Leader lease length; renewed every third of it. A dead leader is "
        "replaced within about this long.",
    )
    refresh_s: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="How often the leader re-reads job definitions and schedules for edits.",
    )
    misfire_grace_s: float = Field(
        60.0,
        gt=0,
        le=86_400,
        description="A firing missed by up to this long still runs (once, coalesced); "
        "later it is dropped.",
    )
    min_schedule_interval_s: float = Field(
        900.0,
        ge=60,
        le=86_400 * 7,
        description="A tuning schedule may not fire more often than this.",
    )
    retention_interval_s: float = Field(
        300.0,
        gt=0,
        le=86_400,
        description="Default interval of the `retention` job (raw samples to rollups, prune).",
    )
    sweep_interval_s: float = Field(
        10.0,
        gt=0,
        le=86_400,
        description="Default interval of `sweep_tuning` (stale tuning runs -> interrupted).",
    )
    reconcile_interval_s: float = Field(
        5.0,
        gt=0,
        le=86_400,
        description="Default interval of `reconcile` (engines left mid-rollout -> LKG).",
    )
    chaos_sweep_interval_s: float = Field(
        30.0,
        gt=0,
        le=86_400,
        description="Default interval of `chaos_sweep` (this host's expired chaos leftovers).",
    )
    min_job_interval_s: float = Field(
        1.0, gt=0, le=3600, description="Smallest interval a system job may be set to."
    )


class HealthWatchSettings(BaseModel):
    """After a change commits, a real inference request on a schedule; repeated failures roll
    the engine back to its previous config. Per-engine overrides are stored (``cplane engine
    watch``); these are the defaults. See docs/scheduler.md."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Watch engines after each committed rollout.")
    interval_s: float = Field(
        15.0, ge=0.2, le=3600, description="Time between two inference checks of an engine."
    )
    failures: int = Field(
        3, ge=1, le=100, description="Consecutive failed checks that trigger the rollback."
    )
    window_s: float = Field(
        86_400.0,
        gt=0,
        le=86_400 * 30,
        description="How long after a commit the engine is watched (and may be rolled back).",
    )
    timeout_s: float = Field(
        3.0,
        gt=0,
        le=300,
        description="A check that takes longer fails; capped at the engine's interval. A "
        "hung engine is rolled back about interval x (failures - 1) + this after it hangs.",
    )
    tick_s: float = Field(
        1.0,
        ge=0.05,
        le=60,
        description="How often the watch looks for engines due a check (its timing grain).",
    )


class DetectorSettings(BaseModel):
    """The control plane's own detectors, run by the scheduler's leader over the stored
    samples (for installations without Prometheus): QPS swing and memory leak. They raise
    alerts of source ``detector``; this group also says when guard alerts resolve on their
    own. See docs/alerts-ingest.md."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Run the QPS-swing and leak detectors.")
    interval_s: float = Field(
        60.0, ge=1, le=3600, description="How often the detectors look at every engine."
    )
    qps_window_s: float = Field(
        600.0, ge=30, le=86_400, description="Window of the QPS-swing coefficient of variation."
    )
    qps_cv_threshold: float = Field(
        0.2,
        gt=0,
        le=10,
        description="Fires when stddev / mean of the per-second request rate over the window "
        "is above this.",
    )
    qps_min_rps: float = Field(
        1.0,
        ge=0,
        description="Traffic floor: an engine averaging fewer requests/s over the window is "
        "never flagged (an idle engine's rate is all noise).",
    )
    qps_min_points: int = Field(
        8, ge=3, le=10_000, description="Rate points the window needs before it is judged."
    )
    leak_threshold: float = Field(
        0.12,
        gt=0,
        le=10,
        description="Fires when memory (GPU used, or the engine process's RSS) grows by more "
        "than this fraction of its level per 100k requests.",
    )
    leak_window_s: float = Field(
        21_600.0, ge=60, le=86_400 * 7, description="How far back the leak fit looks."
    )
    leak_min_requests: float = Field(
        20_000.0,
        ge=100,
        description="Requests a segment (between config changes and restarts) must span "
        "before its slope is judged.",
    )
    leak_min_points: int = Field(
        12, ge=4, le=100_000, description="Memory samples a segment needs before it is judged."
    )
    leak_step_fraction: float = Field(
        0.05,
        gt=0,
        le=1,
        description="A jump of memory between two samples larger than this fraction of its "
        "level starts a new segment (a restart or reload the store did not record).",
    )
    guard_alert_resolve_after_s: float = Field(
        21_600.0,
        gt=0,
        le=86_400 * 30,
        description="A guard alert (rollback, failed rollout) resolves after this long, or "
        "earlier when a later rollout on its engine commits.",
    )


class PrometheusSettings(BaseModel):
    """The Prometheus that scrapes the control plane and evaluates its rules."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        None,
        pattern=r"^https?://[^\s/]+(/\S*)?$",
        description="Base URL of Prometheus, e.g. `http://127.0.0.1:9090`. Set: writing the "
        "SLO rule file is followed by `POST /-/reload` (Prometheus needs "
        "`--web.enable-lifecycle`). Empty: no reload.",
    )
    rules_file: Path | None = Field(
        None,
        description="Where `cplane prometheus rules` writes the SLO burn-rate rules. Empty: "
        "`<data_dir>/prometheus/slo.rules.yml`.",
    )
    promtool: str = Field(
        "promtool", description="promtool command that checks a rule file before it is written."
    )
    reload_timeout_s: float = Field(
        10.0, gt=0, le=300, description="How long a reload request may take."
    )
    rules_interval_s: float = Field(
        5.0,
        ge=1,
        le=3600,
        description="How often the scheduler's leader regenerates the SLO rules and, when "
        "they changed, writes the rule file and reloads Prometheus. The job runs only when "
        "`url` or `rules_file` is set.",
    )


class SmtpSettings(BaseModel):
    """The mail server on-call email goes through."""

    model_config = ConfigDict(extra="forbid")

    host: str | None = Field(
        None, description="SMTP server host. Empty: email contact methods cannot be sent to."
    )
    port: int = Field(587, ge=1, le=65535, description="SMTP server port.")
    security: str = Field(
        "starttls",
        pattern=r"^(starttls|ssl|none)$",
        description="`starttls` (upgrade a plain connection; refused if the server does not "
        "offer it), `ssl` (TLS from the first byte, port 465) or `none` (loopback relays "
        "only).",
    )
    username: str | None = Field(None, description="Login name; empty: no AUTH.")
    password: SecretStr | None = Field(None, description="Login password.")
    from_addr: str = Field(
        "cplane@localhost", max_length=320, description="Envelope and header sender."
    )
    timeout_s: float = Field(10.0, gt=0, le=120, description="Connect and command timeout.")
    ca_file: Path | None = Field(
        None, description="CA bundle to verify the server with. Empty: the system's."
    )


class OncallSettings(BaseModel):
    """Incidents, escalation and notification delivery."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(
        "http://127.0.0.1:8080",
        pattern=r"^https?://[^\s/]+(/\S*)?$",
        description="Public base URL of the control plane, for the incident link and the "
        "one-click acknowledge / resolve links in messages.",
    )
    escalation_interval_s: float = Field(
        1.0, ge=0.2, le=300, description="How often the leader advances due escalations."
    )
    sender_interval_s: float = Field(
        0.5, ge=0.1, le=300, description="How often the leader's sender polls the outbox."
    )
    sender_batch: int = Field(
        50, ge=1, le=1000, description="Notifications claimed per sender round."
    )
    sender_concurrency: int = Field(
        8, ge=1, le=64, description="Notifications delivered in parallel."
    )
    retry_base_s: float = Field(
        2.0, gt=0, le=600, description="First retry delay (doubling, with jitter)."
    )
    retry_cap_s: float = Field(300.0, gt=0, le=86400, description="Longest retry delay.")
    max_attempts: int = Field(
        12, ge=1, le=100, description="Tries before a notification is marked failed."
    )
    stale_sending_s: float = Field(
        120.0,
        ge=5,
        le=86400,
        description="A notification `sending` for longer than this (its sender died) goes "
        "back to `pending`; the channel may see it twice, deduplicated by its key.",
    )
    http_timeout_s: float = Field(
        10.0, gt=0, le=120, description="Timeout of each Slack, PagerDuty or webhook request."
    )
    pagerduty_url: str = Field(
        "https://events.pagerduty.com/v2/enqueue",
        pattern=r"^https?://[^\s/]+(/\S*)?$",
        description="PagerDuty Events API v2 endpoint.",
    )
    action_token_ttl_s: float = Field(
        86400.0,
        ge=60,
        le=30 * 86400,
        description="How long the one-click acknowledge / resolve links in a message work.",
    )
    smtp: SmtpSettings = Field(default_factory=SmtpSettings, description="Outgoing mail.")


class Settings(BaseSettings):
    """Root settings: environment variables ``CP_<FIELD>`` and ``CP_<GROUP>__<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED_DELIMITER,
        env_ignore_empty=True,
        extra="forbid",
    )

    data_dir: Path = Field(
        Path(".cplane"),
        description="Directory for the embedded SQLite store, engine logs and reports.",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the store, e.g. "
        "`postgresql+psycopg://user:pass@host:5432/db`. Empty: SQLite file "
        "`<data_dir>/controlplane.db` in WAL mode.",
    )
    log_level: str = Field(
        "INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$", description="Root log level."
    )
    http_client_log_level: str = Field(
        "WARNING",
        pattern=r"^(DEBUG|INFO|WARNING|ERROR)$",
        description="Log level of the HTTP client libraries (httpx, httpcore); at INFO they "
        "log one line per scrape and per admin call.",
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Keys that encrypt engine admin tokens at rest: comma-separated Fernet "
        "keys, the first encrypts, all decrypt. Empty: the key file is used.",
    )
    secret_key_file: Path | None = Field(
        None,
        description="File holding the keys (one per line, same rules), created `0600` with a "
        "new key on first use. Empty: `<data_dir>/secret.key`.",
    )
    api: ApiSettings = Field(default_factory=ApiSettings, description="API server.")
    ui: UiSettings = Field(default_factory=UiSettings, description="Web admin UI.")
    db: DatabaseSettings = Field(default_factory=DatabaseSettings, description="SQL store.")
    guard: GuardSettings = Field(default_factory=GuardSettings, description="Guarded rollouts.")
    collectors: CollectorSettings = Field(
        default_factory=CollectorSettings, description="Metric collectors."
    )
    chaos: ChaosSettings = Field(default_factory=ChaosSettings, description="Fault injection.")
    tuner: TunerSettings = Field(default_factory=TunerSettings, description="Autotuner.")
    loadtest: LoadTestSettings = Field(
        default_factory=LoadTestSettings, description="Load tests: bounds and stopping rules."
    )
    scheduler: SchedulerSettings = Field(
        default_factory=SchedulerSettings, description="Periodic jobs and leader election."
    )
    health_watch: HealthWatchSettings = Field(
        default_factory=HealthWatchSettings, description="Inference checks after a change."
    )
    detectors: DetectorSettings = Field(
        default_factory=DetectorSettings, description="Built-in QPS-swing and leak detectors."
    )
    prometheus: PrometheusSettings = Field(
        default_factory=PrometheusSettings, description="Prometheus integration."
    )
    oncall: OncallSettings = Field(
        default_factory=OncallSettings, description="On-call: incidents and paging."
    )

    @property
    def chaos_state_dir(self) -> Path:
        return self.chaos.state_dir or self.data_dir / "chaos"

    @property
    def resolved_secret_key_file(self) -> Path:
        return self.secret_key_file or self.data_dir / "secret.key"

    @property
    def prometheus_rules_file(self) -> Path:
        return self.prometheus.rules_file or self.data_dir / "prometheus" / "slo.rules.yml"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'controlplane.db').resolve()}"


def _rows(model: type[BaseModel], prefix: str) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.extend(_rows(annotation, f"{prefix}{name.upper()}{NESTED_DELIMITER}"))
            continue
        rows.append((f"{prefix}{name.upper()}", _default(info), info.description or ""))
    return rows


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None or info.default is None:
        return "(unset)" if info.default is None else "(computed)"
    return f"`{info.default}`"


def settings_markdown() -> str:
    """The settings reference, one row per environment variable."""
    lines = [
        "# Settings",
        "",
        "Generated by `python -m controlplane.settings > docs/settings.md`; do not edit.",
        "Every setting is an environment variable (a `.env` file is not read: set them in",
        "the service unit or the shell). Nested groups use `__`.",
        "",
        "| Variable | Default | Meaning |",
        "|---|---|---|",
    ]
    for var, default, description in _rows(Settings, ENV_PREFIX):
        cell = description.replace("|", "\\|")
        lines.append(f"| `{var}` | {default} | {cell} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(settings_markdown())
