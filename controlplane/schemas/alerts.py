"""Alerts at the edge: the Alertmanager webhook (version 4) in, alerts and their history out.

The webhook body is parsed leniently where Alertmanager versions differ (fields added since,
such as ``notification_reason`` and ``routeLabels``, are accepted and unknown ones ignored)
and strictly where the control plane depends on it: ``version`` must be ``"4"``, each alert
needs a hex fingerprint, a status, labels and an RFC 3339 ``startsAt``. A body that is not
that is refused whole (HTTP 422), so nothing of it is stored.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from typing import Any
from typing import Literal

from pydantic import AwareDatetime
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import field_validator

from controlplane.domain.alerts import AlertSource
from controlplane.domain.alerts import AlertState
from controlplane.schemas.base import check_storable

# Alertmanager sends at most one group per notification; groups of thousands exist in the
# wild (a whole fleet down), so the cap is generous and only guards against abuse.
MAX_ALERTS = 10_000
# Alertmanager sends the zero time (0001-01-01T00:00:00Z) as endsAt of a firing alert.
_ZERO_YEAR = 1


class _Lenient(BaseModel):
    """Unknown fields are ignored (never stored); every field kept must be storable on both
    backends (no NUL, no lone surrogate, no NaN), and every time must have a UTC form."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        check_storable(value)
        if isinstance(value, datetime):
            try:
                return value.astimezone(UTC)
            except OverflowError:
                raise ValueError("time is outside the representable range") from None
        return value


class WebhookAlert(_Lenient):
    status: AlertState
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: AwareDatetime = Field(alias="startsAt")
    ends_at: AwareDatetime | None = Field(None, alias="endsAt")
    generator_url: str = Field("", alias="generatorURL", max_length=4096)
    fingerprint: str = Field(pattern=r"^[0-9a-fA-F]{1,64}$")

    @property
    def ended(self) -> datetime | None:
        """``endsAt`` unless it is the zero time Alertmanager sends for 'not ended'."""
        if self.ends_at is None or self.ends_at.year <= _ZERO_YEAR:
            return None
        return self.ends_at


class AlertmanagerWebhook(_Lenient):
    """``notify/webhook`` ``Message``: ``template.Data`` plus version, group key and the
    number of alerts cut by ``max_alerts``."""

    version: Literal["4"]
    group_key: str = Field(alias="groupKey", max_length=8192)
    truncated_alerts: int = Field(0, alias="truncatedAlerts", ge=0)
    status: AlertState
    receiver: str = Field("", max_length=512)
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field("", alias="externalURL", max_length=4096)
    notification_reason: str | None = None
    alerts: list[WebhookAlert] = Field(min_length=1, max_length=MAX_ALERTS)


class WebhookReceipt(BaseModel):
    """What one delivery did: new alerts, alerts that changed state, alerts seen again
    unchanged, and stale ones (a retried firing of an alert already resolved since)."""

    received: int
    created: int
    changed: int
    unchanged: int
    stale: int


class AlertRead(BaseModel):
    id: int
    fingerprint: str
    alertname: str
    status: AlertState
    source: AlertSource
    engine_id: int | None
    engine: str | None
    labels: dict[str, str]
    annotations: dict[str, str]
    group_key: str | None
    starts_at: datetime
    ends_at: datetime | None
    last_received_at: datetime
    generator_url: str | None
    created: datetime
    updated: datetime


class AlertEventRead(BaseModel):
    status: AlertState
    at: datetime
    payload: dict[str, object]


class AlertDetail(AlertRead):
    """An alert with its history, oldest first."""

    events: list[AlertEventRead]
