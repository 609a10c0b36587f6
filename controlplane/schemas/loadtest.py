"""Load tests at the edge: the sweep's spelling, the request that starts one, what is read.

A sweep is a list (``1,2,4,8``) or a geometric or arithmetic range (``1:512:x2``,
``5:200:x1.5``, ``10:100:+10``); the steps are concurrencies (closed loop, whole numbers)
or request rates (open loop). Parsing and bounds live here so the CLI and the API refuse
the same text with the same message, naming the field, before anything is started.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import ValidationInfo
from pydantic import field_validator
from pydantic import model_validator

from controlplane.domain import ValidationError
from controlplane.domain import parse_slo
from controlplane.schemas.base import InputModel
from controlplane.schemas.base import ReadModel
from controlplane.schemas.tuning import RequestMix

SweepKind = Literal["concurrency", "rate"]
_SWEEP_HELP = "expected a list '1,2,4,8' or a range 'START:STOP:xFACTOR' or 'START:STOP:+STEP'"
# A range that would list more steps than this is refused before it is expanded.
_MAX_EXPANDED = 10_000


def parse_sweep(text: str, *, kind: SweepKind) -> tuple[float, ...]:
    """The steps ``text`` spells, ascending and distinct; refused on field ``kind``."""
    raw = text.strip()
    try:
        if ":" in raw:
            steps = _range(raw)
        else:
            steps = [float(p) for p in raw.split(",") if p.strip()]
    except (ValueError, OverflowError) as exc:
        raise ValidationError(
            f"cannot parse {kind} sweep {text!r}: {_SWEEP_HELP}", field=kind
        ) from exc
    if not steps or not all(math.isfinite(s) and s > 0 for s in steps):
        raise ValidationError(
            f"{kind} sweep {text!r} needs positive steps: {_SWEEP_HELP}", field=kind
        )
    if kind == "concurrency":
        if any(s != int(s) for s in steps):
            raise ValidationError(
                f"concurrency sweep {text!r}: concurrencies are whole numbers", field=kind
            )
    ordered = sorted(set(steps))
    if ordered != steps:
        raise ValidationError(f"{kind} sweep {text!r}: steps must rise", field=kind)
    return tuple(ordered)


def _range(raw: str) -> list[float]:
    parts = raw.split(":")
    if len(parts) != 3:
        raise ValueError(raw)
    start, stop = float(parts[0]), float(parts[1])
    step = parts[2].strip().lower()
    if not (0 < start <= stop) or not math.isfinite(stop):
        raise ValueError(raw)
    out: list[float] = []
    if step.startswith("x"):
        factor = float(step[1:])
        if not factor > 1:
            raise ValueError(raw)
        value = start
        while value <= stop * (1 + 1e-9):
            out.append(round(value, 6))
            value *= factor
            if len(out) > _MAX_EXPANDED:
                raise ValueError(raw)
    elif step.startswith("+"):
        increment = float(step[1:])
        if not increment > 0:
            raise ValueError(raw)
        n = math.floor((stop - start) / increment + 1e-9)
        if n + 1 > _MAX_EXPANDED:
            raise ValueError(raw)
        out = [round(start + i * increment, 6) for i in range(n + 1)]
    else:
        raise ValueError(raw)
    return out


class PromptEntry(BaseModel):
    """One line of a prompt file: ``{"prompt": "...", "max_tokens": 64}``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    prompt: str = Field(min_length=1, max_length=100_000)
    max_tokens: int | None = Field(None, ge=1, le=100_000)


def parse_prompts(text: str, *, limit: int) -> tuple[PromptEntry, ...]:
    """A JSONL prompt file: one JSON object with a ``prompt`` per line; refused on field
    ``prompts`` with the line that is wrong."""
    entries: list[PromptEntry] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            entries.append(PromptEntry.model_validate(data))
        except ValueError as exc:
            reason = str(exc).splitlines()[0]
            raise ValidationError(
                f"prompt file line {number} is not a JSON object with a 'prompt': {reason}",
                field="prompts",
            ) from exc
        if len(entries) > limit:
            raise ValidationError(f"prompt file has more than {limit} prompts", field="prompts")
    if not entries:
        raise ValidationError("prompt file has no prompts", field="prompts")
    return tuple(entries)


class LoadTestCreate(InputModel):
    """Start a load test: exactly one of ``concurrency`` (closed loop) or ``rate`` (open loop).

    SLOs default to the engine's own; the knee is judged by them."""

    concurrency: str | None = Field(
        None, max_length=400, description="Closed-loop sweep, e.g. `1,2,4,8` or `1:512:x2`."
    )
    rate: str | None = Field(
        None, max_length=400, description="Open-loop sweep in req/s, e.g. `5:200:x1.5`."
    )
    arrivals: Literal["constant", "poisson"] = Field(
        "constant", description="Open loop: evenly spaced or Poisson arrivals."
    )
    shapes: tuple[RequestMix, ...] = Field(
        (RequestMix(prompt_len=16, max_tokens=8),),
        min_length=1,
        max_length=16,
        description="Prompt / output length mix (generated prompts).",
    )
    prompts: list[PromptEntry] = Field(
        default_factory=list,
        max_length=10_000,
        description="Prompts sent in turn instead of generated ones (a prompt file's lines).",
    )
    slo: list[str] = Field(
        default_factory=list, max_length=8, description="e.g. `p99_ms<=300`; empty: the engine's."
    )
    model: str | None = Field(None, max_length=200, description="Default: the engine's first.")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    baseline: int | None = Field(
        None, ge=1, le=2**63 - 1, description="A stored load test to compare with step by step."
    )

    @field_validator("slo")
    @classmethod
    def _slos_parse(cls, value: list[str]) -> list[str]:
        specs = []
        for text in value:
            try:
                specs.append(parse_slo(text).spec())
            except ValidationError as exc:
                raise ValueError(str(exc)) from None
        return specs

    @field_validator("concurrency", "rate")
    @classmethod
    def _sweep_parses(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            try:
                parse_sweep(value, kind=info.field_name)  # type: ignore[arg-type]
            except ValidationError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _one_sweep(self) -> LoadTestCreate:
        if (self.concurrency is None) == (self.rate is None):
            raise ValueError(
                "concurrency, rate: give exactly one (a closed-loop or an open-loop sweep)"
            )
        return self

    @property
    def kind(self) -> SweepKind:
        return "concurrency" if self.concurrency is not None else "rate"

    def steps(self) -> tuple[float, ...]:
        text = self.concurrency if self.concurrency is not None else self.rate
        assert text is not None
        return parse_sweep(text, kind=self.kind)


class LoadTestStepRead(ReadModel):
    index: int
    offered: float
    throughput_rps: float
    output_tokens_per_s: float
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    ttft_p50_ms: float | None
    ttft_p99_ms: float | None
    tpot_ms: float | None
    requests: int
    errors: int
    rejected: int
    error_rate: float
    meets_slo: bool
    stable: bool
    windows: int
    throughput_noise: float
    p99_noise: float
    duration_s: float


class LoadTestRead(ReadModel):
    id: int
    engine_id: int
    state: str
    kind: str
    spec: dict[str, Any]
    result: dict[str, Any] | None
    actor: str
    created: datetime
    updated: datetime
    started_at: datetime | None
    finished_at: datetime | None
    steps: list[LoadTestStepRead] = []
