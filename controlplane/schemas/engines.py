from __future__ import annotations

from datetime import datetime
from typing import Annotated
from typing import Any
from typing import Literal

from pydantic import AnyHttpUrl
from pydantic import Field
from pydantic import SecretStr
from pydantic import StringConstraints
from pydantic import field_validator

from controlplane.domain import redact_url
from controlplane.schemas.base import InputModel
from controlplane.schemas.base import ReadModel

# Names start with a letter so that a path segment of digits is unambiguously an id.
EngineName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$"),
]
EngineKind = Literal["reference", "vllm", "sglang", "tgi", "triton", "process"]
ApprovalMode = Literal["auto", "manual"]
LabelKey = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=r"^[a-z_]\w*$")]
LabelValue = Annotated[str, StringConstraints(max_length=200)]
Labels = Annotated[dict[LabelKey, LabelValue], Field(max_length=32)]


def _url(value: AnyHttpUrl | None) -> str | None:
    return None if value is None else str(value).rstrip("/")


class EngineCreate(InputModel):
    name: EngineName
    kind: EngineKind = "reference"
    url: AnyHttpUrl = Field(description="Base URL of the engine's HTTP server.")
    metrics_url: AnyHttpUrl | None = Field(
        None, description="Prometheus endpoint; default `<url>/metrics`."
    )
    admin_token: SecretStr | None = Field(
        None, max_length=512, description="Bearer token for the engine's admin API."
    )
    approval_mode: ApprovalMode = Field(
        "auto", description="`manual`: tuner and scheduled changes wait for an operator."
    )
    description: str = Field("", max_length=1000)
    labels: Labels = Field(default_factory=dict)

    def row_values(self) -> dict[str, Any]:
        values = self.model_dump(exclude={"admin_token", "url", "metrics_url"})
        values["url"] = _url(self.url)
        values["metrics_url"] = _url(self.metrics_url)
        values["admin_token"] = self.admin_token.get_secret_value() if self.admin_token else None
        return values


class EngineUpdate(InputModel):
    """A partial update: only the fields present are changed."""

    name: EngineName | None = None
    url: AnyHttpUrl | None = None
    metrics_url: AnyHttpUrl | None = None
    admin_token: SecretStr | None = Field(None, max_length=512)
    approval_mode: ApprovalMode | None = None
    description: str | None = Field(None, max_length=1000)
    labels: Labels | None = None

    @field_validator("name", "url", "approval_mode", "description", "labels", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Explicit null would mean "unset" for a field that cannot be unset.
        if value is None:
            raise ValueError("may be omitted but not null")
        return value

    def row_values(self) -> dict[str, Any]:
        values = self.model_dump(exclude_unset=True, exclude={"admin_token", "url", "metrics_url"})
        fields = self.model_fields_set
        if "url" in fields:
            values["url"] = _url(self.url)
        if "metrics_url" in fields:
            values["metrics_url"] = _url(self.metrics_url)
        if "admin_token" in fields:
            token = self.admin_token
            values["admin_token"] = token.get_secret_value() if token else None
        return values


class EngineRead(ReadModel):
    id: int
    name: str
    kind: str
    url: str
    metrics_url: str | None
    approval_mode: str
    description: str
    labels: dict[str, str]
    has_admin_token: bool
    created: datetime
    updated: datetime

    @classmethod
    def from_row(cls, row: Any) -> EngineRead:
        """Never the token, and URLs without their credentials (``user:pw@`` becomes ``***@``):
        whoever may read engines is not thereby allowed the engine's secrets."""
        values = {f: getattr(row, f) for f in cls.model_fields if f != "has_admin_token"}
        values["url"] = redact_url(row.url)
        values["metrics_url"] = None if row.metrics_url is None else redact_url(row.metrics_url)
        values["has_admin_token"] = row.admin_token_enc is not None
        return cls.model_validate(values)


class EngineConfigRead(ReadModel):
    id: int
    engine_id: int
    version: int
    config: dict[str, Any]
    source: str
    created_by: str
    created: datetime
    is_last_known_good: bool
