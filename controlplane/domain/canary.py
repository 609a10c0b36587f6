"""A canary plan: the traffic shares a new config takes on one replica, and for how long.

Written ``1%:30m,10%:10m,50%:10m``: each step is a share of all requests (in percent, above
0 and below 100) and how long it holds; after the last step the config goes to every
replica. Shares must rise: a plan that steps down, or repeats a share, is a typo.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from controlplane.domain.errors import ValidationError

DEFAULT_PLAN = "1%:30m,10%:10m,50%:10m"
_STEP = re.compile(
    r"^\s*(?P<share>\d+(?:\.\d+)?)\s*%\s*:\s*(?P<hold>\d+(?:\.\d+)?)(?P<unit>ms|s|m|h)\s*$"
)
_UNIT_S = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
MAX_STEPS = 20


@dataclass(frozen=True)
class CanaryStep:
    share: float
    """Fraction of all requests, in (0, 1)."""
    hold_s: float

    def spec(self) -> str:
        return f"{self.share * 100:g}%:{self.hold_s:g}s"


def parse_canary_plan(text: str) -> tuple[CanaryStep, ...]:
    """Raises: ValidationError (field ``canary``) naming the step and what is wrong."""
    parts = [p for p in text.split(",")]
    if not text.strip() or len(parts) > MAX_STEPS:
        raise ValidationError(
            f"a canary plan has 1 to {MAX_STEPS} steps like '1%:30m', got {text!r}",
            field="canary",
        )
    steps: list[CanaryStep] = []
    for part in parts:
        match = _STEP.match(part)
        if match is None:
            raise ValidationError(
                f"canary step {part.strip()!r} is not <percent>%:<duration> "
                "(a duration is a number with ms, s, m or h, e.g. 1%:30m)",
                field="canary",
            )
        share = float(match["share"]) / 100.0
        hold_s = float(match["hold"]) * _UNIT_S[match["unit"]]
        if not (0.0 < share < 1.0):
            raise ValidationError(
                f"canary step {part.strip()!r}: the share must be above 0% and below 100% "
                "(the config goes to every replica after the last step)",
                field="canary",
            )
        if not (math.isfinite(hold_s) and hold_s > 0):
            raise ValidationError(
                f"canary step {part.strip()!r}: the duration must be above 0", field="canary"
            )
        if steps and share <= steps[-1].share:
            raise ValidationError(
                f"canary step {part.strip()!r}: shares must rise, but "
                f"{share * 100:g}% follows {steps[-1].share * 100:g}%",
                field="canary",
            )
        steps.append(CanaryStep(share=share, hold_s=hold_s))
    return tuple(steps)
