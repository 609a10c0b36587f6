"""Service level objectives and their one-line spelling.

``p99_ms<=300`` (end-to-end latency), ``ttft_p95_ms<=500`` (time to first token) and
``error_rate<=0.5%`` are what an operator types on a command line and what the tuner and the
guard receive. Every SLO is also a *violation rate*: "p99 <= 300 ms" means at most 1 % of
requests slower than 300 ms, which is how the guard tests it (counts, not quantile estimates).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from controlplane.domain.engines import Series
from controlplane.domain.errors import ValidationError

SloKind = Literal["latency", "ttft", "error_rate"]

_LATENCY = re.compile(
    r"^(?P<ttft>ttft_)?p(?P<q>\d{1,2}(?:\.\d+)?)_(?P<unit>ms|s)\s*<=\s*(?P<v>\d+(?:\.\d+)?)$"
)
_ERRORS = re.compile(r"^error_rate\s*<=\s*(?P<v>\d+(?:\.\d+)?)(?P<pct>%)?$")


@dataclass(frozen=True)
class SLO:
    kind: SloKind
    threshold: float  # seconds for latency kinds, a ratio for error_rate
    quantile: float | None = None
    window_s: float = 30.0

    def __post_init__(self) -> None:
        if self.kind == "error_rate":
            if not 0.0 <= self.threshold < 1.0:
                raise ValidationError("error_rate must be in [0, 1)", field="slo")
        else:
            if self.quantile is None or not 0.0 < self.quantile < 1.0:
                raise ValidationError("a latency SLO needs a quantile in (0, 1)", field="slo")
            if self.threshold <= 0:
                raise ValidationError("a latency threshold must be positive", field="slo")
        if not 0 < self.window_s <= 86_400:
            raise ValidationError("an SLO window must be in (0, 86400] seconds", field="window")

    @property
    def name(self) -> str:
        if self.kind == "error_rate":
            return "error_rate"
        assert self.quantile is not None
        prefix = "ttft_" if self.kind == "ttft" else ""
        return f"{prefix}p{_num(self.quantile * 100)}"

    @property
    def allowed_violation_rate(self) -> float:
        """The share of requests that may violate: 1 - q for quantiles, the rate itself else."""
        if self.kind == "error_rate":
            return self.threshold
        assert self.quantile is not None
        return 1.0 - self.quantile

    @property
    def series(self) -> Series:
        return {
            "latency": Series.request_latency,
            "ttft": Series.time_to_first_token,
            "error_rate": Series.requests_failed,
        }[self.kind]

    def spec(self) -> str:
        if self.kind == "error_rate":
            return f"error_rate<={_num(self.threshold)}"
        return f"{self.name}_ms<={_num(self.threshold * 1000)}"


def parse_slo(text: str, *, window_s: float = 30.0) -> SLO:
    """Parse ``p99_ms<=300``, ``ttft_p95_s<=0.5`` or ``error_rate<=1%``.

    Raises:
        ValidationError: the text is not one of those forms (the message shows them).
    """
    raw = text.strip().lower()
    if m := _LATENCY.match(raw):
        q = float(m["q"]) / 100
        value = float(m["v"]) / (1000 if m["unit"] == "ms" else 1)
        return SLO("ttft" if m["ttft"] else "latency", value, quantile=q, window_s=window_s)
    if m := _ERRORS.match(raw):
        value = float(m["v"]) / (100 if m["pct"] else 1)
        return SLO("error_rate", value, window_s=window_s)
    raise ValidationError(
        f"cannot parse SLO {text!r}: expected e.g. 'p99_ms<=300', 'ttft_p95_ms<=500' "
        "or 'error_rate<=1%'",
        field="slo",
    )


def _num(value: float) -> str:
    return f"{value:.6g}"
