"""Engine configurations and the knobs that span them.

Every engine kind describes what it can change as a :class:`SearchSpace` of :class:`Knob`s;
the guard validates a proposed change against it before anything touches the engine, and the
tuner samples from it. A knob either lists its legal values (``choices``) or bounds a numeric
range (``low``/``high``), because the tuner treats the two differently (categorical vs ordered).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Literal

from controlplane.domain.errors import ValidationError

ConfigValue = int | float | str | bool
EngineConfig = dict[str, ConfigValue]
KnobKind = Literal["int", "float", "choice"]


@dataclass(frozen=True)
class Knob:
    """One adjustable setting of an engine and its legal values.

    ``choices`` alone: only those values are legal. ``low``/``high`` alone: any value in the
    range. Both: any value in the range is legal, and ``choices`` are the grid the tuner
    explores (an engine accepts batch 12, the tuner tries 1, 2, 4, ...).
    """

    name: str
    kind: KnobKind
    choices: tuple[ConfigValue, ...] = ()
    low: float | None = None
    high: float | None = None
    default: ConfigValue | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not self.choices and (self.low is None or self.high is None):
            raise ValueError(f"knob {self.name!r} needs choices or a low/high range")
        if self.kind == "choice" and not self.choices:
            raise ValueError(f"choice knob {self.name!r} needs choices")

    def validate(self, value: object) -> ConfigValue:
        """Return ``value`` coerced to the knob's type, or raise :class:`ValidationError`."""
        coerced = self._coerce(value)
        if self.kind == "choice" or self.low is None or self.high is None:
            if coerced not in self.choices:
                legal = ", ".join(str(c) for c in self.choices)
                raise ValidationError(
                    f"{self.name}={value!r} is not a legal value (legal: {legal})", field=self.name
                )
            return coerced
        assert isinstance(coerced, int | float)
        if not (self.low <= coerced <= self.high):
            raise ValidationError(
                f"{self.name}={value!r} is outside [{self.low:g}, {self.high:g}]", field=self.name
            )
        return coerced

    def _coerce(self, value: object) -> ConfigValue:
        if self.kind == "choice":
            # Command lines hand us strings: "8" must match the choice 8.
            for choice in self.choices:
                if value == choice or (isinstance(value, str) and value == str(choice)):
                    return choice
            if isinstance(value, str | int | float | bool):
                return value
            raise ValidationError(f"{self.name}: unsupported value {value!r}", field=self.name)
        if isinstance(value, bool):
            raise ValidationError(f"{self.name} must be a number, not a boolean", field=self.name)
        try:
            number = float(value) if isinstance(value, str | int | float) else math.nan
        except ValueError:
            number = math.nan
        if math.isnan(number) or math.isinf(number):
            raise ValidationError(f"{self.name}={value!r} is not a number", field=self.name)
        if self.kind == "int":
            if number != int(number):
                raise ValidationError(f"{self.name}={value!r} is not an integer", field=self.name)
            return int(number)
        return number

    def values(self) -> tuple[ConfigValue, ...]:
        """The discrete values of the knob; a range knob yields only its bounds and default."""
        if self.choices:
            return self.choices
        assert self.low is not None and self.high is not None
        found: list[ConfigValue] = []
        for v in (self.low, self.default, self.high):
            if v is None or isinstance(v, str | bool):
                continue
            value = int(v) if self.kind == "int" else float(v)
            if value not in found:
                found.append(value)
        return tuple(found)


@dataclass(frozen=True)
class SearchSpace:
    """The knobs of one engine; validation of a whole config lives here so it is done once."""

    knobs: tuple[Knob, ...] = field(default_factory=tuple)

    def __iter__(self) -> Iterator[Knob]:
        return iter(self.knobs)

    def __contains__(self, name: object) -> bool:
        return any(k.name == name for k in self.knobs)

    def knob(self, name: str) -> Knob:
        for k in self.knobs:
            if k.name == name:
                return k
        known = ", ".join(k.name for k in self.knobs)
        raise ValidationError(f"unknown knob {name!r} (known: {known})", field=name)

    def validate(self, changes: Mapping[str, object]) -> EngineConfig:
        """Validate a (partial) config; every problem is an error naming its knob."""
        return {name: self.knob(name).validate(value) for name, value in changes.items()}

    def grid_size(self) -> int:
        return math.prod(len(k.values()) for k in self.knobs) if self.knobs else 0
