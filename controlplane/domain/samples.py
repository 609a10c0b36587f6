"""Time-series points as every layer exchanges them: frozen, hashable, free of ORM rows.

``labels`` is a sorted tuple of pairs rather than a dict so a :class:`Sample` is hashable and
two samples of one series compare equal label for label; :func:`canonical_labels` renders
them as the canonical JSON text the store keys series by (cached: label sets repeat on
every scrape, and encoding them again is a measurable share of ingest time).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import NamedTuple

Labels = tuple[tuple[str, str], ...]


def labels_of(mapping: Mapping[str, str]) -> Labels:
    """The canonical (sorted) label tuple of a mapping."""
    return tuple(sorted((str(k), str(v)) for k, v in mapping.items()))


@lru_cache(maxsize=65536)
def canonical_labels(labels: Labels) -> str:
    """Canonical JSON text of a label tuple: sorted keys, no whitespace."""
    return json.dumps(dict(labels), sort_keys=True, separators=(",", ":"))


class Sample(NamedTuple):
    """One point: ``ts`` Unix seconds, ``source`` the engine (or host) it describes,
    ``metric`` a canonical series name, ``value`` finite.

    A named tuple rather than a frozen dataclass: a scrape makes thousands of these, and a
    tuple is built in a third of the time while staying immutable and hashable.
    """

    ts: float
    source: str
    metric: str
    labels: Labels
    value: float

    @property
    def labels_json(self) -> str:
        return canonical_labels(self.labels)

    def label(self, name: str) -> str | None:
        for key, value in self.labels:
            if key == name:
                return value
        return None
