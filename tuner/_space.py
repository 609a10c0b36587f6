"""From the engine's search space to Optuna distributions, and back.

The adapter says what the engine can do; the tuner explores each knob's discrete grid
(``Knob.values()``: the listed choices, or a range's bounds and default). Every knob becomes
a categorical distribution over that grid: the spaces are small (about a hundred configs),
the grid sampler and the replay benchmark need exactly these values, and a suggested value
is always one the engine accepts as is. Knobs left out of the run stay at the engine's
current value.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass

import optuna

from controlplane.domain import ConfigValue
from controlplane.domain import EngineConfig
from controlplane.domain import SearchSpace
from controlplane.domain import ValidationError


@dataclass(frozen=True)
class TuningSpace:
    """The knobs one run tunes and the grid of each."""

    grids: tuple[tuple[str, tuple[ConfigValue, ...]], ...]

    @classmethod
    def of(cls, space: SearchSpace, *, knobs: Sequence[str] = ()) -> TuningSpace:
        """The run's space: ``knobs`` of ``space`` (all of them when empty).

        Raises:
            ValidationError: a named knob is not in the engine's space.
        """
        names = list(knobs) or [k.name for k in space]
        grids = []
        for name in names:
            values = space.knob(name).values()
            grids.append((name, tuple(values)))
        if not grids:
            raise ValidationError("the engine offers no knobs to tune", field="knobs")
        return cls(tuple(grids))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.grids)

    def size(self) -> int:
        size = 1
        for _, values in self.grids:
            size *= len(values)
        return size

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        return {
            name: optuna.distributions.CategoricalDistribution(values)
            for name, values in self.grids
        }

    def grid(self) -> dict[str, list[ConfigValue]]:
        return {name: list(values) for name, values in self.grids}

    def configs(self) -> Iterator[EngineConfig]:
        """Every config of the grid (for exhaustive search and the replay landscape)."""
        for combo in itertools.product(*(values for _, values in self.grids)):
            yield dict(zip(self.names, combo, strict=True))

    def params_of(self, config: Mapping[str, ConfigValue]) -> dict[str, ConfigValue] | None:
        """``config`` restricted to the tuned knobs, or ``None`` if a value is off the grid
        (then the config cannot be enqueued as a trial; it is measured outside the study)."""
        params: dict[str, ConfigValue] = {}
        for name, values in self.grids:
            value = config.get(name)
            match = next((v for v in values if v == value), None)
            if match is None:
                return None
            params[name] = match
        return params


def config_key(params: Mapping[str, object]) -> tuple[tuple[str, str], ...]:
    """A hashable identity of a config: repeated suggestions share it."""
    return tuple(sorted((k, repr(v)) for k, v in params.items()))
