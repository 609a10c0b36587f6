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

import re
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from math import isfinite

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


_LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)=\"([^\"\\]*)\"")


@dataclass(frozen=True, slots=True)
class _Target:
    series: Series
    source: MetricSource
    part: str  # "bucket" | "sum" | "count" | "value"
    metric: str  # canonical sample name, "" when the part is not kept


def _targets(metric_map: MetricMap) -> dict[str, tuple[_Target, ...]]:
    """Sample name -> where it goes; built per map, cached by :func:`_index`."""
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


# What one sample line becomes: (canonical metric, labels, multiplier) per target it feeds.
_Out = tuple[tuple[str, Labels, float], ...]
# A scrape repeats the same series text every time; past this many distinct lines per map
# (a label explosion) the line cache starts over rather than growing without bound.
_LINE_CACHE_LIMIT = 200_000


@dataclass(slots=True)
class _Index:
    """A metric map's targets, plus what each raw line text resolved to before.

    The line cache is Prometheus's own scrape-cache idea: an engine exposes the same series
    text on every scrape, so splitting, sorting and mapping its labels is done once per
    series instead of once per scrape.
    """

    targets: dict[str, tuple[_Target, ...]]
    lines: dict[tuple[str, str], _Out]
    # Sample names with one target that needs no label test and no ``le`` rescaling (nearly
    # all of them): what a new line of theirs becomes needs only its sorted labels.
    simple: dict[str, tuple[str, float]]


_INDEX_CACHE: dict[int, tuple[MetricMap, _Index]] = {}


def _index(metric_map: MetricMap) -> _Index:
    cached = _INDEX_CACHE.get(id(metric_map))
    if cached is None or cached[0] is not metric_map:
        targets = _targets(metric_map)
        simple = {
            name: (t.metric, 1.0 if t.part in ("bucket", "count") else t.source.scale)
            for name, (t, *more) in targets.items()
            if not more
            and not (t.source.match or t.source.exclude)
            and (t.part != "bucket" or t.source.scale == 1.0)
        }
        cached = (metric_map, _Index(targets, {}, simple))
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
    lines = text.count("\n") + 1
    comments = text.count("\n#") + (1 if text.startswith("#") else 0)
    # Comment lines other than HELP / TYPE / EOF go to the real parser. Counting the known
    # prefixes (str.count is a C scan) is ~10x cheaper than a multi-line regex search, which
    # is only needed when the counts disagree.
    known = sum(text.count("\n" + p) + text.startswith(p) for p in _COMMENT_OK)
    if known != comments and _BAD_COMMENT.search(text):
        return None
    triples: list[tuple[str, str, str]] = _SAMPLE_LINE.findall(text)
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
    index = _index(metric_map)
    triples = _fast_triples(text)
    if triples is None:
        return _canonical(_slow_lines(text), index.targets, source, ts)
    lines = index.lines
    outs: list[tuple[_Out | None, str]] = []
    misses: list[tuple[int, str, str]] = []  # (position in outs, name, label text) not seen before
    for name, label_text, raw_value in triples:
        out = lines.get((name, label_text))
        if out is None:
            if name not in index.targets:
                continue
            misses.append((len(outs), name, label_text))
        elif not out:
            continue
        outs.append((out, raw_value))
    if misses:
        learned = _learn(index, misses)
        if learned is None:  # label text the fast path cannot read: the real parser
            return _canonical(_slow_lines(text), index.targets, source, ts)
        for (i, _, _), out in zip(misses, learned, strict=True):
            outs[i] = (out, outs[i][1])
    samples: list[Sample] = []
    append = samples.append
    for out, raw_value in outs:
        if not out:
            continue
        value = float(raw_value)  # the line pattern admits number-shaped text only
        if not isfinite(value):
            continue
        for metric, label_tuple, multiplier in out:
            append(Sample(ts, source, metric, label_tuple, value * multiplier))
    return samples


def _learn(index: _Index, misses: list[tuple[int, str, str]]) -> list[_Out] | None:
    """Resolve lines not seen before, in order, and remember them in the line cache;
    ``None`` when some label text is not in the plain form. (Returned rather than read back
    from the cache, which a scrape of another engine on another thread may clear.)

    One ``findall`` over all their label texts at once (C speed), each line taking as many
    pairs as it has ``="``; the counts of pairs and quotes must agree exactly, since
    fast-path values contain no quotes or backslashes.
    """
    joined = "\x00".join(m[2] for m in misses)
    pairs: list[tuple[str, str]] = _LABEL.findall(joined)
    if len(pairs) != joined.count('="') or joined.count('"') != 2 * len(pairs):
        return None
    lines = index.lines
    if len(lines) + len(misses) > _LINE_CACHE_LIMIT:
        lines.clear()
    simple = index.simple
    learned: list[_Out] = []
    pos = 0
    for _, name, label_text in misses:
        count = label_text.count('="')
        own = pairs[pos : pos + count]
        pos += count
        label_tuple = tuple(sorted(own))
        plain = simple.get(name)
        if plain is not None:
            out: _Out = ((plain[0], label_tuple, plain[1]),)
        else:
            out = _route(index.targets[name], dict(own), label_tuple)
        lines[(name, label_text)] = out
        learned.append(out)
    return learned


def _route(targets: tuple[_Target, ...], labels: dict[str, str], label_tuple: Labels) -> _Out:
    out: list[tuple[str, Labels, float]] = []
    for t in targets:
        src = t.source
        if (src.match or src.exclude) and not src.accepts(labels):
            continue
        if t.part == "bucket":
            bucket_labels = label_tuple
            if src.scale != 1.0 and "le" in labels:
                scaled = dict(labels)
                scaled["le"] = floatToGoString(float(labels["le"]) * src.scale)
                bucket_labels = tuple(sorted(scaled.items()))
            out.append((t.metric, bucket_labels, 1.0))
        else:
            out.append((t.metric, label_tuple, 1.0 if t.part == "count" else src.scale))
    return tuple(out)


def _canonical(
    lines: Iterable[tuple[str, dict[str, str], float]],
    targets: dict[str, tuple[_Target, ...]],
    source: str,
    ts: float,
) -> list[Sample]:
    samples: list[Sample] = []
    for name, labels, value in lines:
        wanted = targets.get(name)
        if not wanted or not isfinite(value):
            continue
        for metric, label_tuple, multiplier in _route(
            wanted, labels, tuple(sorted(labels.items()))
        ):
            samples.append(Sample(ts, source, metric, label_tuple, value * multiplier))
    return samples
