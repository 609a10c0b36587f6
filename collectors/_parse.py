"""Prometheus text exposition -> canonical :class:`Sample` list. Pure: no I/O, no clock.

prometheus-client's own parser is the authority on the format. It is also slow (it walks
label values character by character: ~60 us a line, 300 ms for a 5,000-series page on a busy
2-core machine), so lines in the plain form ``name{k="v",...} value [ts]`` without escapes
take a regular-expression fast path that yields the same (name, labels, value) triples;
any other line, anywhere in the page, sends the whole page through prometheus-client, which
also raises on garbage. Tests compare both paths on every captured fixture.

Only families the engine's metric map names become samples; histograms stay cumulative
``_bucket`` samples keyed by ``le`` plus ``_sum`` / ``_count``, as Prometheus stores them.
Counters stay cumulative: resets are handled where deltas are taken
(:mod:`collectors._quantiles`). Non-finite values are dropped (SQLite cannot store NaN).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

from controlplane.domain import MetricMap
from controlplane.domain import MetricSource
from controlplane.domain import Sample
from controlplane.domain import Series
from controlplane.domain.samples import Labels
from controlplane.engines.metric_maps import SERIES_TYPES


class ParseError(ValueError):
    """The body is not Prometheus text exposition (garbage, HTML, truncated)."""


_LINE = re.compile(
    r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*=\"[^\"\\]*\",?)*)\})?"
    r"[ \t]+([^ \t]+)(?:[ \t]+-?[0-9]+)?[ \t]*"
)
_LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)=\"([^\"\\]*)\"")


@dataclass(frozen=True, slots=True)
class _Target:
    series: Series
    source: MetricSource
    part: str  # "bucket" | "sum" | "count" | "value"
    metric: str  # canonical sample name, "" when the part is not kept


def _targets(metric_map: MetricMap) -> dict[str, tuple[_Target, ...]]:
    """Sample name -> where it goes; built per map, cached by :func:`index_for`."""
    found: dict[str, list[_Target]] = {}

    def add(sample_name: str, target: _Target) -> None:
        if target.metric:
            found.setdefault(sample_name, []).append(target)

    for series, sources in metric_map.items():
        canonical = SERIES_TYPES.get(series)
        for src in sources:
            shape = canonical or src.type
            name = series.value
            if src.type == "histogram":
                if shape == "histogram":
                    add(f"{src.name}_bucket", _Target(series, src, "bucket", f"{name}_bucket"))
                    add(f"{src.name}_sum", _Target(series, src, "sum", f"{name}_sum"))
                    add(f"{src.name}_count", _Target(series, src, "count", f"{name}_count"))
                else:  # a counter fed by a histogram's sum
                    add(f"{src.name}_sum", _Target(series, src, "sum", name))
            else:
                metric = f"{name}_sum" if shape == "histogram" else name
                part = "sum" if shape == "histogram" else "value"
                if src.type == "counter":
                    add(f"{src.name}_total", _Target(series, src, part, metric))
                add(src.name, _Target(series, src, part, metric))
    return {name: tuple(targets) for name, targets in found.items()}


_INDEX_CACHE: dict[int, tuple[MetricMap, dict[str, tuple[_Target, ...]]]] = {}


def index_for(metric_map: MetricMap) -> dict[str, tuple[_Target, ...]]:
    cached = _INDEX_CACHE.get(id(metric_map))
    if cached is None or cached[0] is not metric_map:
        cached = (metric_map, _targets(metric_map))
        _INDEX_CACHE[id(metric_map)] = cached
    return cached[1]


_SAMPLE_LINE = re.compile(
    # The label block is taken whole (no quotes-aware pattern, which backtracks): its pairs are
    # parsed afterwards and checked by exact counts, and any doubt sends the page to the real
    # parser. Only number-shaped values, so a line of prose is not a sample.
    r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}\\\n]*)\})?"
    r"[ \t]+([-+]?(?:[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|[0-9]+\.|NaN|Inf))"
    r"(?:[ \t]+-?[0-9]+)?[ \t]*$",
    re.MULTILINE,
)
_COMMENT_OK = ("# HELP ", "# TYPE ", "# EOF")
_BAD_COMMENT = re.compile(r"^#(?! HELP | TYPE |\s*EOF)", re.MULTILINE)


def _fast_triples(text: str) -> list[tuple[str, str, str]] | None:
    """(name, label text, value text) of every sample line, or ``None`` when some line
    needs the real parser.

    One ``findall`` over the whole body runs the line loop in C; the matches are counted
    against the body's non-comment lines, so a line it could not read (escapes, garbage)
    sends the page to prometheus-client instead of being skipped.
    """
    triples: list[tuple[str, str, str]] = _SAMPLE_LINE.findall(text)
    if _BAD_COMMENT.search(text):
        return None
    lines = text.count("\n") + 1
    comments = text.count("\n#") + (1 if text.startswith("#") else 0)
    blank = text.count("\n\n") + (1 if text.startswith("\n") else 0) + 1  # the final ""
    if len(triples) != lines - comments - blank:
        return None
    return triples


def _fast_lines(text: str) -> Iterator[tuple[str, dict[str, str], float]] | None:
    triples = _fast_triples(text)
    if triples is None:
        return None
    out: list[tuple[str, dict[str, str], float]] = []
    for name, label_text, raw_value in triples:
        pairs = _LABEL.findall(label_text) if label_text else []
        if len(pairs) != label_text.count('="') or label_text.count('"') != 2 * len(pairs):
            return None
        try:
            out.append((name, dict(pairs), float(raw_value)))
        except ValueError:
            return None
    return iter(out)


def _slow_lines(text: str) -> Iterator[tuple[str, dict[str, str], float]]:
    try:
        families = list(text_string_to_metric_families(text))
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        raise ParseError(f"not Prometheus text exposition: {exc}") from exc
    for family in families:
        for s in family.samples:
            yield s.name, dict(s.labels), float(s.value)


def raw_samples(text: str) -> Iterable[tuple[str, dict[str, str], float]]:
    """(sample name, labels, value) of every sample line in ``text``.

    Raises:
        ParseError: not exposition text, or a body cut off before its final newline.
    """
    if text and not text.endswith("\n"):
        raise ParseError("body does not end with a newline: truncated")
    fast = _fast_lines(text)
    return fast if fast is not None else _slow_lines(text)


def parse(text: str, *, source: str, metric_map: MetricMap, ts: float) -> list[Sample]:
    """Canonical samples of the families ``metric_map`` names; everything else is ignored.

    Raises:
        ParseError: the body is not Prometheus text exposition.
    """
    if text and not text.endswith("\n"):
        raise ParseError("body does not end with a newline: truncated")
    index = index_for(metric_map)
    triples = _fast_triples(text)
    if triples is None:
        return _canonical(_slow_lines(text), index, source, ts)
    # Fast path: only lines of families the map wants go on; their labels are split by one
    # findall over all of them at once (C speed), each line taking as many pairs as it has
    # '="' (exact: fast-path values contain no quotes).
    wanted = [t for t in triples if t[0] in index]
    joined = "\x00".join(t[1] for t in wanted)
    all_pairs: list[tuple[str, str]] = _LABEL.findall(joined)
    if not (len(all_pairs) == joined.count('="') and joined.count('"') == 2 * len(all_pairs)):
        return _canonical(_slow_lines(text), index, source, ts)
    samples: list[Sample] = []
    pos = 0
    for name, label_text, raw_value in wanted:
        count = label_text.count('="')
        label_tuple = tuple(sorted(all_pairs[pos : pos + count]))
        pos += count
        try:
            value = float(raw_value)
        except ValueError:
            return _canonical(_slow_lines(text), index, source, ts)
        if not math.isfinite(value):
            continue
        for t in index[name]:
            src = t.source
            if src.scale == 1.0 and not src.match and not src.exclude:
                samples.append(Sample(ts, source, t.metric, label_tuple, value))  # common case
                continue
            sample = _sample(t, dict(label_tuple), label_tuple, value, source, ts)
            if sample is not None:
                samples.append(sample)
    return samples


def _split_labels(label_text: str) -> list[tuple[str, str]]:
    """``a="x",b="y"`` -> pairs. Safe by construction: the fast-path pattern only accepts
    values without quotes or backslashes, so ``",`` can only end a value."""
    if not label_text:
        return []
    pairs = []
    for part in label_text.rstrip(",").split('",'):
        key, _, value = part.partition('="')
        pairs.append((key, value[:-1] if value.endswith('"') else value))
    return pairs


def _canonical(
    lines: Iterable[tuple[str, dict[str, str], float]],
    index: dict[str, tuple[_Target, ...]],
    source: str,
    ts: float,
) -> list[Sample]:
    samples: list[Sample] = []
    for name, labels, value in lines:
        targets = index.get(name)
        if not targets or not math.isfinite(value):
            continue
        label_tuple = tuple(sorted(labels.items()))
        for t in targets:
            sample = _sample(t, labels, label_tuple, value, source, ts)
            if sample is not None:
                samples.append(sample)
    return samples


def _sample(
    t: _Target, labels: dict[str, str], label_tuple: Labels, value: float, source: str, ts: float
) -> Sample | None:
    src = t.source
    if (src.match or src.exclude) and not src.accepts(labels):
        return None
    scale = src.scale
    if t.part == "bucket":
        if scale != 1.0 and "le" in labels:
            scaled = dict(labels)
            scaled["le"] = floatToGoString(float(labels["le"]) * scale)
            label_tuple = tuple(sorted(scaled.items()))
        return Sample(ts, source, t.metric, label_tuple, value)
    if t.part != "count":
        value = value * scale
    return Sample(ts, source, t.metric, label_tuple, value)
