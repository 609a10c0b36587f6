"""Quality probe requests and answers over HTTP."""

from __future__ import annotations

from pydantic import Field
from pydantic import field_validator

from controlplane.domain import ValidationError
from controlplane.domain.quality import DEFAULT_TOP_K
from controlplane.domain.quality import ProbePrompt
from controlplane.domain.quality import parse_probe_set
from controlplane.schemas.base import InputModel

ConfigValue = int | float | str | bool


class QualityRecord(InputModel):
    prompts: str | None = Field(
        None,
        max_length=512 * 1024,
        description='A JSONL probe set (one {"prompt": ...} per line); default: the '
        "shipped 32 prompts.",
    )
    config: dict[str, ConfigValue] = Field(
        default_factory=dict,
        max_length=16,
        description="The config the engine must be serving (recorded with the answers).",
    )
    top_k: int = Field(DEFAULT_TOP_K, ge=1, le=20, description="Alternatives kept per token.")

    @field_validator("prompts")
    @classmethod
    def _parses(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_probe_set(value)
            except ValidationError as exc:
                raise ValueError(str(exc)) from None
        return value

    def probe_set(self) -> tuple[ProbePrompt, ...] | None:
        return None if self.prompts is None else parse_probe_set(self.prompts)


class QualityCheck(InputModel):
    config: dict[str, ConfigValue] = Field(
        default_factory=dict, max_length=16, description="The config the engine must serve."
    )
    worst: int = Field(5, ge=0, le=50, description="How many of the worst prompts to list.")
