"""PromQL text built from the engines' metric maps: selectors for one canonical series.

A Prometheus server stores what an engine exposes, not the control plane's canonical names,
so both the shipped canonical recording rules and the generated SLO rules translate each
:class:`~controlplane.domain.MetricSource` into a selector here, in one place.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from collections.abc import Sequence

from controlplane.domain import MetricSource

# prometheus_client appends ``_total`` to counters; the Rust and C++ exporters of TGI and
# Triton expose the name as declared. The parser reports both without the suffix.
_PLAIN_COUNTERS = frozenset({"tgi", "triton", "trtllm"})


def exposed_name(kind: str, source: MetricSource, part: str = "") -> str:
    """The name Prometheus stores: a counter's ``_total`` where the exporter adds it, a
    histogram's ``_bucket`` / ``_count`` / ``_sum`` given as ``part``."""
    if source.type == "counter":
        return source.name if kind in _PLAIN_COUNTERS else f"{source.name}_total"
    if source.type == "histogram":
        return f"{source.name}{part}"
    return source.name


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def regex_alternatives(values: Sequence[str]) -> str:
    return "|".join(re.escape(v) for v in values)


def selector(
    kind: str,
    source: MetricSource,
    *,
    part: str = "",
    extra: Mapping[str, str] | None = None,
    kinds: Sequence[str] = (),
) -> str:
    """``name{matchers}`` for one source; ``extra`` adds exact matchers (``engine``,
    ``le`` given as ``=~`` when it starts with ``~``)."""
    matchers: list[str] = []
    if len(kinds) == 1:
        matchers.append(f"kind={quote(kinds[0])}")
    elif kinds:
        matchers.append(f"kind=~{quote(regex_alternatives(kinds))}")
    for key, values in sorted(source.match.items()):
        matchers.append(f"{key}=~{quote(regex_alternatives(values))}")
    for key, values in sorted(source.exclude.items()):
        matchers.append(f"{key}!~{quote(regex_alternatives(values))}")
    for key, value in sorted((extra or {}).items()):
        if value.startswith("~"):
            matchers.append(f"{key}=~{quote(value[1:])}")
        else:
            matchers.append(f"{key}={quote(value)}")
    return f"{exposed_name(kind, source, part)}{{{', '.join(matchers)}}}"


def le_regex(threshold: float) -> str:
    """A regex matching a bucket bound however the exporter spells it (``1``, ``1.0``,
    ``0.25``, ``0.250``): Prometheus before 3.0 keeps ``le`` as exposed."""
    text = f"{threshold:.12g}"
    if "e" in text:
        return re.escape(text)
    if "." in text:
        return re.escape(text) + "0*"
    return re.escape(text) + r"(\.0+)?"
