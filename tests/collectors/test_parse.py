from __future__ import annotations

from pathlib import Path

import pytest

from collectors import ParseError
from collectors import parse
from collectors._parse import _slow_lines
from collectors._parse import raw_samples
from controlplane.domain import Sample
from controlplane.engines.metric_maps import metric_map_for

FIXTURES = Path(__file__).parents[1] / "fixtures" / "collectors"
KINDS = ["reference", "vllm", "sglang", "tgi", "triton"]


def _text(kind: str) -> str:
    return (FIXTURES / kind / "metrics.txt").read_text()


def _parse(kind: str) -> list[Sample]:
    return parse(_text(kind), source="e", metric_map=metric_map_for(kind), ts=100.0)


def _one(samples: list[Sample], metric: str, **labels: str) -> float:
    found = [
        s
        for s in samples
        if s.metric == metric and all(s.label(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, (metric, labels, found)
    return found[0].value


@pytest.mark.parametrize("kind", KINDS)
def test_fast_path_matches_prometheus_client(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The real parser renames an untyped-suffix counter sample ``x`` to ``x_total``; both
    # names map to the same series, so the canonical output is what must agree.
    fast = sorted(_parse(kind), key=repr)
    assert len(list(raw_samples(_text(kind)))) == len(list(_slow_lines(_text(kind))))
    monkeypatch.setattr("collectors._parse._fast_triples", lambda text: None)
    assert sorted(_parse(kind), key=repr) == fast


@pytest.mark.parametrize("kind", KINDS)
def test_line_cache_gives_what_a_first_parse_gives(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The second scrape of a page resolves its lines from the cache; the values must be the
    # new scrape's, everything else as the real parser says. A tiny cache limit makes every
    # scrape start the cache over, the path a label explosion takes.
    first = _text(kind)
    second = first.replace(" 1\n", " 2\n").replace(".0\n", ".5\n")
    assert second != first
    metric_map = dict(metric_map_for(kind))  # a map of its own: a cold cache
    for limit in (200_000, 3):
        monkeypatch.setattr("collectors._parse._LINE_CACHE_LIMIT", limit)
        for text in (first, second, second):
            cached = parse(text, source="e", metric_map=metric_map, ts=1.0)
            with monkeypatch.context() as m:
                m.setattr("collectors._parse._fast_triples", lambda text: None)
                real = parse(text, source="e", metric_map=metric_map, ts=1.0)
            assert sorted(cached, key=repr) == sorted(real, key=repr)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_yields_canonical_series(kind: str) -> None:
    samples = _parse(kind)
    assert samples
    assert {s.source for s in samples} == {"e"} and {s.ts for s in samples} == {100.0}
    assert all(s.labels == tuple(sorted(s.labels)) for s in samples)


def test_vllm_counters_histograms_and_error_split() -> None:
    s = _parse("vllm")
    assert _one(s, "requests_succeeded_total", finished_reason="length") == 131
    assert _one(s, "requests_failed_total", finished_reason="error") == 8
    assert not [
        x
        for x in s
        if x.metric == "requests_succeeded_total" and x.label("finished_reason") == "error"
    ]
    assert _one(s, "time_to_first_token_seconds_bucket", le="0.1") == 140
    assert _one(s, "time_to_first_token_seconds_bucket", le="+Inf") == 140
    assert _one(s, "time_to_first_token_seconds_count") == 140  # vLLM's invariant: count == N
    assert _one(s, "kv_cache_usage_ratio") == 0.4375
    assert _one(s, "generation_tokens_total") == 27453
    # cache_config_info is not mapped: carried in labels, not a series.
    assert not [x for x in s if "cache_config" in x.metric]


def test_triton_units_are_seconds() -> None:
    s = _parse("triton")
    assert _one(s, "request_latency_seconds_sum", model="tensorrt_llm") == pytest.approx(80.5)
    assert _one(s, "queue_time_seconds_sum") == pytest.approx(0.01111)
    assert _one(s, "time_to_first_token_seconds_bucket", le="0.5") == 150  # 500 ms
    assert _one(s, "time_to_first_token_seconds_sum") == pytest.approx(48.3)
    assert _one(s, "time_to_first_token_seconds_count") == 161
    assert _one(s, "requests_running") == 0  # request_type="active" only, never "max"
    assert _one(s, "kv_cache_usage_ratio") == 0.4875


def test_tgi_and_sglang() -> None:
    t = _parse("tgi")
    assert _one(t, "prompt_tokens_total") == 31616  # the input-length histogram's sum
    assert _one(t, "request_latency_seconds_count") == 208
    assert _one(t, "requests_failed_total", err="validation") == 3
    g = _parse("sglang")
    assert _one(g, "time_to_first_token_seconds_bucket", le="+Inf") == 11008
    assert _one(g, "kv_cache_usage_ratio") == 0.28


def test_reference_engine_live_capture() -> None:
    s = _parse("reference")
    assert _one(s, "request_latency_seconds_count") >= 1
    assert any(x.metric == "batch_size_bucket" for x in s)


def test_non_finite_values_are_dropped() -> None:
    text = "# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running NaN\n"
    assert parse(text, source="e", metric_map=metric_map_for("vllm"), ts=1.0) == []


def test_escaped_labels_take_the_real_parser() -> None:
    text = 'vllm:num_requests_running{model_name="a\\"b"} 3\n'
    samples = parse(text, source="e", metric_map=metric_map_for("vllm"), ts=1.0)
    (s,) = [x for x in samples if x.metric == "requests_running"]
    assert s.label("model_name") == 'a"b'


@pytest.mark.parametrize(
    "body",
    [
        "<html><body>Login</body></html>\n",
        "\x00\x01garbage {{{ \n",
        'vllm:num_requests_running{model_name="x',
        "vllm:num_requests_running 1\nvllm:num_requests_wai",
        "hello world\n",
    ],
    ids=["html", "garbage", "truncated-label", "truncated-line", "words"],
)
def test_bad_bodies_raise(body: str) -> None:
    with pytest.raises(ParseError):
        parse(body, source="e", metric_map=metric_map_for("vllm"), ts=1.0)


@pytest.mark.parametrize(
    "value",
    ["a}b", "a,b", 'x=\\"y\\"', "back\\\\slash", 'k=\\"v\\",z', "new\\nline", "plain"],
)
def test_hostile_label_values_parse_as_prometheus_client_does(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (
        "# TYPE vllm:num_requests_running gauge\n"
        f'vllm:num_requests_running{{model_name="{value}",engine="0"}} 3\n'
        'vllm:num_requests_running{model_name="ok",engine="1"} 4\n'
    )
    metric_map = metric_map_for("vllm")
    fast = parse(text, source="e", metric_map=metric_map, ts=1.0)
    monkeypatch.setattr("collectors._parse._fast_triples", lambda text: None)
    slow = parse(text, source="e", metric_map=metric_map, ts=1.0)
    assert sorted(fast) == sorted(slow)
    assert len(slow) == 4  # two lines, each feeding two canonical series
