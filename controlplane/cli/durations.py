"""``60s``, ``2m``, ``500ms``, ``1h`` or plain seconds, as typed on a command line."""

from __future__ import annotations

import re

from controlplane.domain import ValidationError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str, *, field: str) -> float:
    match = _DURATION.match(text)
    if match is None or float(match[1]) <= 0:
        raise ValidationError(
            f"{field}: {text!r} is not a duration like 60s, 2m or 500ms", field=field
        )
    return float(match[1]) * _UNIT[match[2]]
