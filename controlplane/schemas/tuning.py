"""Tuning runs at the edge: the request that starts one, and what is read back.

The load profile has a one-line spelling (``rate=40``, ``concurrency=16``,
``rate=40,arrivals=poisson,shapes=32x16+256x64``, ``live``) so the CLI and the API accept the
same text; it is parsed here, at layer 0, so both edges reject a bad one with the same
message before anything is started.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import field_validator
from pydantic import model_validator

from controlplane.domain import ValidationError
from controlplane.domain import parse_slo
from controlplane.domain.quality import is_quality_spec
from controlplane.domain.quality import parse_quality
from controlplane.schemas.base import InputModel
from controlplane.schemas.base import ReadModel

Objective = Literal["goodput", "p99", "pareto", "capacity"]
SamplerName = Literal["auto", "tpe", "gp", "grid", "random"]
LoadMode = Literal["constant", "poisson", "closed", "live"]

_LOAD_HELP = (
    "expected e.g. 'rate=40', 'rate=40,arrivals=poisson', 'concurrency=16', "
    "'rate=40,shapes=32x16+256x64' or 'live'"
)


class RequestMix(BaseModel):
    """One prompt / output length pair of the synthetic load, drawn with ``weight``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt_len: int = Field(ge=0, le=100_000)
    max_tokens: int = Field(ge=1, le=100_000)
    weight: float = Field(1.0, gt=0)


class LoadProfile(BaseModel):
    """The load a trial is measured under: synthetic (open or closed loop) or live traffic."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: LoadMode
    rate: float | None = Field(None, gt=0, le=100_000)
    concurrency: int | None = Field(None, ge=1, le=10_000)
    shapes: tuple[RequestMix, ...] = (RequestMix(prompt_len=16, max_tokens=8),)
    model: str | None = Field(None, max_length=200, description="Default: the engine's first.")

    def spec(self) -> str:
        """The one-line spelling this profile parses from."""
        if self.mode == "live":
            return "live"
        parts = []
        if self.mode == "closed":
            parts.append(f"concurrency={self.concurrency}")
        else:
            parts.append(f"rate={self.rate:g}")
            if self.mode == "poisson":
                parts.append("arrivals=poisson")
        shapes = "+".join(f"{s.prompt_len}x{s.max_tokens}" for s in self.shapes)
        parts.append(f"shapes={shapes}")
        if self.model:
            parts.append(f"model={self.model}")
        return ",".join(parts)


def parse_load(text: str) -> LoadProfile:
    """Parse a load spec; every problem is one :class:`ValidationError` on field ``load``."""
    raw = text.strip()
    if raw.lower() == "live":
        return LoadProfile(mode="live")
    fields: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or not value.strip() or key in fields:
            raise ValidationError(f"cannot parse load {text!r}: {_LOAD_HELP}", field="load")
        fields[key] = value.strip()
    unknown = set(fields) - {"rate", "concurrency", "arrivals", "shapes", "model"}
    if unknown or not fields:
        raise ValidationError(f"cannot parse load {text!r}: {_LOAD_HELP}", field="load")
    if ("rate" in fields) == ("concurrency" in fields):
        raise ValidationError(
            f"load {text!r} needs exactly one of rate= (open loop) or concurrency= (closed loop)",
            field="load",
        )
    try:
        if "rate" in fields:
            rate = float(fields["rate"])
            if not (math.isfinite(rate) and 0 < rate <= 100_000):
                raise ValueError(rate)
            arrivals = fields.get("arrivals", "constant").lower()
            if arrivals not in ("constant", "poisson"):
                raise ValueError(arrivals)
            mode: LoadMode = "poisson" if arrivals == "poisson" else "constant"
            kwargs: dict[str, Any] = {"mode": mode, "rate": rate}
        else:
            if "arrivals" in fields:
                raise ValueError("arrivals")
            concurrency = int(fields["concurrency"])
            if not 1 <= concurrency <= 10_000:
                raise ValueError(concurrency)
            kwargs = {"mode": "closed", "concurrency": concurrency}
        if "shapes" in fields:
            kwargs["shapes"] = tuple(_shape(s) for s in fields["shapes"].split("+"))
        if "model" in fields:
            kwargs["model"] = fields["model"]
        return LoadProfile(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ValidationError(f"cannot parse load {text!r}: {_LOAD_HELP}", field="load") from exc


def parse_shapes(text: str) -> tuple[RequestMix, ...]:
    """A prompt / output length mix ``32x16+256x64``; refused on field ``shapes``."""
    try:
        return tuple(_shape(s) for s in text.split("+"))
    except (ValueError, TypeError) as exc:
        raise ValidationError(
            f"cannot parse shapes {text!r}: expected PROMPTxOUTPUT[+PROMPTxOUTPUT...], "
            "e.g. '32x16+256x64'",
            field="shapes",
        ) from exc


def _shape(text: str) -> RequestMix:
    prompt, sep, tokens = text.strip().lower().partition("x")
    if not sep:
        raise ValueError(text)
    return RequestMix(prompt_len=int(prompt), max_tokens=int(tokens))


class TuningCreate(InputModel):
    """Start a tuning run. SLOs default to the engine's own (the ones the guard judges by)."""

    objective: Objective = Field(
        "goodput",
        description="goodput: requests/s meeting the SLO (maximise); p99: latency at the "
        "load (minimise); pareto: throughput and p99 together, a Pareto front; capacity: the "
        "highest request rate sustained within the SLO, found by a rate search per trial "
        "(needs a latency SLO in `slo`).",
    )
    slo: list[str] = Field(
        default_factory=list,
        max_length=8,
        description="Constraints such as `p99_ms<=300`; empty: the engine's SLOs.",
    )
    load: str = Field("concurrency=16", max_length=200, description="Load spec, or `live`.")
    trials: int = Field(20, ge=1, le=1000, description="Trial budget (the baseline included).")
    knobs: list[str] = Field(
        default_factory=list,
        max_length=16,
        description="Knobs to tune; empty: every knob of the engine's search space.",
    )
    sampler: SamplerName = Field("auto", description="auto: chosen from measurements.")
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    margin: float | None = Field(
        None, ge=0, lt=0.5, description="SLO safety margin; default CP_TUNER__MARGIN."
    )
    repeats: int | None = Field(
        None, ge=1, le=20, description="Re-measurements of best and default; default setting."
    )
    apply_best: bool = Field(True, description="Propose the best config through the guard.")

    @field_validator("slo")
    @classmethod
    def _slos_parse(cls, value: list[str]) -> list[str]:
        specs = []
        for text in value:
            try:
                parsed = parse_quality(text) if is_quality_spec(text) else parse_slo(text)
                specs.append(parsed.spec())
            except ValidationError as exc:
                raise ValueError(str(exc)) from None
        return specs

    @field_validator("load")
    @classmethod
    def _load_parses(cls, value: str) -> str:
        try:
            return parse_load(value).spec()
        except ValidationError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _capacity_needs(self) -> TuningCreate:
        if self.objective != "capacity":
            return self
        if not any(parse_slo(s).kind in ("latency", "ttft") for s in self.slo):
            raise ValueError(
                "slo: the capacity objective needs a latency SLO to hold the rate within, "
                "e.g. --slo 'p99_ms<=300'"
            )
        if parse_load(self.load).mode == "live":
            raise ValueError(
                "load: the capacity objective sends its own rates; live traffic cannot be "
                "stepped up (use e.g. 'rate=20' as the first rate tried)"
            )
        return self

    def load_profile(self) -> LoadProfile:
        return parse_load(self.load)


class TuningRunRead(ReadModel):
    id: int
    engine_id: int
    study_name: str
    state: str
    objective: str
    spec: dict[str, Any]
    result: dict[str, Any] | None
    actor: str
    created: datetime
    updated: datetime
    started_at: datetime | None
    finished_at: datetime | None


class TrialRead(BaseModel):
    """One trial as the CLI table and the API show it (from the Optuna study)."""

    number: int
    state: str
    params: dict[str, Any]
    values: list[float] | None
    feasible: bool | None
    kind: str
    rollout_id: int | None = None
    goodput: float | None = None
    throughput: float | None = None
    p99_ms: float | None = None
    stable: bool | None = None
    error: str | None = None
