"""On-call at the edge: what people send to configure paging, and what they read back.

Every input is checked here or in the domain with an error that names its field: a contact
method with a malformed address, a rotation without participants, an inverted or overlapping
override, an unparseable matcher. Secrets (Slack webhook URLs, PagerDuty integration keys,
webhook signing secrets) are ``SecretStr`` on the way in and never part of a read model.
"""

from __future__ import annotations

import re
from datetime import datetime
from datetime import time
from typing import Any

from pydantic import AwareDatetime
from pydantic import Field
from pydantic import SecretStr
from pydantic import field_validator
from pydantic import model_validator

from controlplane.domain.escalation import ChannelKind
from controlplane.domain.escalation import TargetKind
from controlplane.domain.incidents import IncidentState
from controlplane.domain.incidents import NotificationState
from controlplane.domain.matchers import parse_matchers
from controlplane.domain.oncall_schedules import RotationKind
from controlplane.domain.oncall_schedules import zone
from controlplane.schemas.base import InputModel
from controlplane.schemas.base import ReadModel

NAME = r"^[A-Za-z][A-Za-z0-9_.-]*$"
# Deliberately plain: one @, no spaces, a dot in the domain (smtplib sends what it is given).
_EMAIL = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\".]+$")
_URL = re.compile(r"^https?://[^\s/?#]+(/[^\s]*)?$")
_PAGERDUTY_KEY = re.compile(r"^[A-Za-z0-9]{32}$")
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_MATCHERS = 32


def _check_matchers(value: list[str]) -> list[str]:
    try:
        parse_matchers(value)
    except Exception as exc:  # the domain's ValidationError names the matcher
        raise ValueError(str(exc)) from exc
    return value


class ContactMethodCreate(InputModel):
    """``address`` for email; ``url`` for Slack (its incoming-webhook URL) and webhooks;
    ``routing_key`` for PagerDuty (the integration key); ``secret`` signs webhooks."""

    name: str = Field(min_length=1, max_length=64, pattern=NAME)
    kind: ChannelKind
    address: str | None = Field(None, max_length=320)
    url: SecretStr | None = None
    routing_key: SecretStr | None = None
    secret: SecretStr | None = None

    @model_validator(mode="after")
    def _complete(self) -> ContactMethodCreate:
        kind = self.kind
        if kind is ChannelKind.email:
            if not self.address or not _EMAIL.match(self.address):
                raise ValueError(f"address: {self.address!r} is not an email address")
        elif kind in (ChannelKind.slack, ChannelKind.webhook):
            url = self.url.get_secret_value() if self.url else ""
            if not _URL.match(url) or len(url) > 2048:
                raise ValueError("url: an http(s) URL is required")
            if kind is ChannelKind.webhook and (
                self.secret is None or len(self.secret.get_secret_value()) < 16
            ):
                raise ValueError("secret: a webhook needs a signing secret of 16+ characters")
        elif kind is ChannelKind.pagerduty:
            key = self.routing_key.get_secret_value() if self.routing_key else ""
            if not _PAGERDUTY_KEY.match(key):
                raise ValueError("routing_key: a PagerDuty integration key is 32 letters/digits")
        return self


class ContactMethodRead(ReadModel):
    id: int
    user: str
    name: str
    kind: ChannelKind
    address: str


class NotificationRuleCreate(InputModel):
    contact_method: str = Field(min_length=1, max_length=64, pattern=NAME)
    delay_s: int = Field(0, ge=0, le=86400)


class NotificationRuleRead(ReadModel):
    id: int
    user: str
    contact_method: str
    delay_s: int


class RestrictionIn(InputModel):
    days: list[int] = Field(min_length=1, max_length=7)
    start: time
    end: time

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[int]) -> list[int]:
        if any(d < 0 or d > 6 for d in value):
            raise ValueError("days are 0 (Monday) to 6 (Sunday)")
        return value


class LayerIn(InputModel):
    name: str = Field(min_length=1, max_length=64)
    kind: RotationKind
    start: datetime = Field(description="First handoff, wall-clock time in the schedule's zone.")
    length: int = Field(1, ge=1, le=8760, description="Days, weeks or hours (custom).")
    participants: list[str] = Field(max_length=100, description="User names, in order.")
    restrictions: list[RestrictionIn] = Field(default_factory=list, max_length=14)

    @field_validator("start")
    @classmethod
    def _naive(cls, value: datetime) -> datetime:
        if value.tzinfo is not None:
            raise ValueError("a wall-clock time without offset (the schedule's zone applies)")
        return value

    @field_validator("participants")
    @classmethod
    def _someone(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("a rotation needs participants")
        return value


class ScheduleCreate(InputModel):
    name: str = Field(min_length=1, max_length=100, pattern=NAME)
    timezone: str = Field("UTC", max_length=64)
    description: str = Field("", max_length=2000)
    layers: list[LayerIn] = Field(min_length=1, max_length=10)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zone(value)
        except Exception as exc:
            raise ValueError(str(exc)) from exc
        return value


class OverrideCreate(InputModel):
    user: str = Field(min_length=1, max_length=64)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    replaces: str | None = Field(None, max_length=64)

    @model_validator(mode="after")
    def _ordered(self) -> OverrideCreate:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class OverrideRead(ReadModel):
    id: int
    user: str
    replaces: str | None
    starts_at: datetime
    ends_at: datetime


class LayerRead(ReadModel):
    name: str
    kind: RotationKind
    start: datetime
    length: int
    participants: list[str]
    restrictions: list[dict[str, Any]]


class ScheduleRead(ReadModel):
    id: int
    name: str
    timezone: str
    description: str
    layers: list[LayerRead]
    overrides: list[OverrideRead]


class OnCallRead(ReadModel):
    schedule: str
    at: datetime
    user: str | None
    source: str | None


class ShiftRead(ReadModel):
    user: str
    starts_at: datetime
    ends_at: datetime
    source: str


class TargetIn(InputModel):
    kind: TargetKind
    ref: str = Field(min_length=1, max_length=100, description="Schedule, user or team name.")


class TeamCreate(InputModel):
    name: str = Field(min_length=1, max_length=100, pattern=NAME)
    members: list[str] = Field(default_factory=list, max_length=200, description="User names.")


class TeamRead(ReadModel):
    id: int
    name: str
    members: list[str]


class StepIn(InputModel):
    targets: list[TargetIn] = Field(min_length=1, max_length=20)
    delay_s: int = Field(300, ge=0, le=86400, description="Wait before the next step.")


class PolicyCreate(InputModel):
    name: str = Field(min_length=1, max_length=100, pattern=NAME)
    repeat: int = Field(0, ge=0, le=20)
    steps: list[StepIn] = Field(min_length=1, max_length=20)


class PolicyRead(ReadModel):
    id: int
    name: str
    repeat: int
    steps: list[dict[str, Any]]


class RouteCreate(InputModel):
    name: str = Field(min_length=1, max_length=100, pattern=NAME)
    position: int = Field(100, ge=0, le=1_000_000)
    matchers: list[str] = Field(default_factory=list, max_length=MAX_MATCHERS)
    policy: str | None = Field(None, max_length=100)
    group_by: list[str] = Field(default_factory=list, max_length=16)
    auto_resolve: bool = True

    @field_validator("matchers")
    @classmethod
    def _matchers(cls, value: list[str]) -> list[str]:
        return _check_matchers(value)

    @field_validator("group_by")
    @classmethod
    def _labels(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _LABEL.match(name):
                raise ValueError(f"{name!r} is not a label name")
        return value


class RouteRead(ReadModel):
    id: int
    name: str
    position: int
    matchers: list[str]
    policy: str | None
    group_by: list[str]
    auto_resolve: bool


class SilenceCreate(InputModel):
    matchers: list[str] = Field(default_factory=list, max_length=MAX_MATCHERS)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    comment: str = Field("", max_length=2000)

    @field_validator("matchers")
    @classmethod
    def _matchers(cls, value: list[str]) -> list[str]:
        return _check_matchers(value)

    @model_validator(mode="after")
    def _ordered(self) -> SilenceCreate:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class SilenceRead(ReadModel):
    id: int
    matchers: list[str]
    starts_at: datetime
    ends_at: datetime
    comment: str
    created_by: str


class IncidentRead(ReadModel):
    id: int
    key: str
    title: str
    state: IncidentState
    engine: str | None
    labels: dict[str, str]
    group_labels: dict[str, str]
    policy: str | None
    escalation_step: int
    escalation_loop: int
    next_escalation_at: datetime | None
    snoozed_until: datetime | None
    triggered_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    alerts_firing: int
    alerts_total: int


class IncidentEventRead(ReadModel):
    at: datetime
    kind: str
    actor: str
    detail: dict[str, Any]


class NotificationRead(ReadModel):
    id: int
    user: str | None
    channel: ChannelKind
    action: str
    state: NotificationState
    attempts: int
    retry_at: datetime
    sent_at: datetime | None
    last_error: str | None


class NearbyRollout(ReadModel):
    """A rollout of the incident's engine that was in flight during the incident's window."""

    id: int
    state: str
    reason: str
    started_at: datetime
    finished_at: datetime | None


class NearbyTuningRun(ReadModel):
    """A tuning run of the incident's engine that was in progress during its window."""

    id: int
    state: str
    objective: str
    started_at: datetime
    finished_at: datetime | None


class IncidentDetail(IncidentRead):
    annotations: dict[str, str]
    alert_ids: list[int]
    timeline: list[IncidentEventRead]
    notifications: list[NotificationRead]
    # The changes an on-call person asks about first: what moved on this engine just before
    # or while it broke. Window: ``context_from`` to ``context_to``.
    context_from: datetime
    context_to: datetime
    rollouts: list[NearbyRollout]
    tuning_runs: list[NearbyTuningRun]


class SnoozeIn(InputModel):
    minutes: int = Field(ge=1, le=7 * 24 * 60)


class NoteIn(InputModel):
    text: str = Field(min_length=1, max_length=4000)
