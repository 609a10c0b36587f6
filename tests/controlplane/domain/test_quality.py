"""Quality specs, probe sets and the measures, as plain values."""

from __future__ import annotations

import math

import pytest

from controlplane.domain import ValidationError
from controlplane.domain.quality import GreedyAnswer
from controlplane.domain.quality import PositionScore
from controlplane.domain.quality import ProbePrompt
from controlplane.domain.quality import QualityResult
from controlplane.domain.quality import ReferenceAnswer
from controlplane.domain.quality import coarse_kl
from controlplane.domain.quality import compare
from controlplane.domain.quality import parse_probe_set
from controlplane.domain.quality import parse_quality
from controlplane.domain.quality import probe_set_jsonl


@pytest.mark.parametrize(
    ("text", "measure", "threshold", "spec"),
    [
        ("quality>=0.98", "agreement", 0.98, "quality>=0.98"),
        (" Quality >= 98% ", "agreement", 0.98, "quality>=0.98"),
        ("quality_exact>=0.9", "exact", 0.9, "quality_exact>=0.9"),
        ("quality_kl<=0.02", "kl", 0.02, "quality_kl<=0.02"),
    ],
)
def test_quality_specs_parse(text: str, measure: str, threshold: float, spec: str) -> None:
    parsed = parse_quality(text)
    assert (parsed.measure, parsed.threshold, parsed.spec()) == (measure, threshold, spec)
    assert parse_quality(parsed.spec()) == parsed


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("quality>0.98", "cannot parse"),
        ("quality>=high", "cannot parse"),
        ("quality_bleu>=0.5", "unknown quality measure 'quality_bleu'"),
        ("quality<=0.98", "'>='"),
        ("quality_kl>=0.02", "'<='"),
        ("quality>=1.5", "(0, 1]"),
        ("quality>=0", "(0, 1]"),
        ("quality_kl<=0", "(0, 10]"),
    ],
)
def test_bad_quality_specs_name_the_problem(text: str, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_quality(text)
    assert reason in str(info.value) and info.value.field == "slo"


def test_a_probe_set_round_trips_and_defaults_ids_and_lengths() -> None:
    prompts = parse_probe_set('{"prompt": "a"}\n\n{"prompt": "b", "id": "x", "max_tokens": 4}\n')
    assert prompts == (ProbePrompt("p1", "a", 16), ProbePrompt("x", "b", 4))
    assert parse_probe_set(probe_set_jsonl(prompts)) == prompts


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "the probe set is empty"),
        ("\n  \n", "the probe set is empty"),
        ('{"prompt": "a"}\n{"prompt": ', "line 2 is not JSON"),
        ("[1, 2]", "line 1 is not a JSON object"),
        ('{"text": "a"}', "no non-empty string 'prompt'"),
        ('{"prompt": ""}', "no non-empty string 'prompt'"),
        ('{"prompt": "a", "max_tokens": 0}', "'max_tokens' must be between 1 and 64"),
        ('{"prompt": "a", "max_tokens": "8"}', "'max_tokens' must be an integer"),
        ('{"prompt": "a", "id": "q"}\n{"prompt": "b", "id": "q"}', "duplicate id 'q'"),
        ('{"prompt": "' + "x" * 2001 + '"}', "longer than 2000"),
        ('{"prompt": "a"}\n' * 257, "more than 256 prompts"),
    ],
)
def test_bad_probe_sets_name_the_problem(text: str, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_probe_set(text, source="mine.jsonl")
    assert reason in str(info.value) and info.value.field == "prompts"


def _ref(
    tokens: tuple[int, ...], scores: tuple[PositionScore, ...] | None = None
) -> ReferenceAnswer:
    return ReferenceAnswer(
        ProbePrompt("p", "x"), GreedyAnswer((256, 120), tokens, "length"), scores
    )


def test_agreement_counts_the_prefix_before_the_first_divergence() -> None:
    ref = _ref((1, 2, 3, 4))
    same = compare(ref, GreedyAnswer((256, 120), (1, 2, 3, 4), "length"))
    assert (same.diverged_at, same.agreement) == (None, 1.0)
    late = compare(ref, GreedyAnswer((256, 120), (1, 2, 9, 4), "length"))
    assert (late.diverged_at, late.agreement, late.expected, late.got) == (2, 0.5, (3, 4), (9, 4))
    short = compare(ref, GreedyAnswer((256, 120), (1, 2), "stop"))
    assert (short.diverged_at, short.agreement) == (2, 0.5)
    result = QualityResult((same, late, short))
    assert result.exact == pytest.approx(1 / 3) and result.agreement == pytest.approx(2 / 3)
    assert [p.id for p in result.worst(5)] == ["p", "p"]  # the identical one is not "worst"
    assert result.to_json()["diverged"] == 2


def test_coarse_kl_is_zero_for_equal_distributions_and_a_lower_bound_otherwise() -> None:
    p = PositionScore(math.log(0.5), ((1, math.log(0.5)), (2, math.log(0.3))))
    assert coarse_kl(p, p) == pytest.approx(0.0, abs=1e-12)
    q = PositionScore(math.log(0.2), ((2, math.log(0.6)), (1, math.log(0.2))))
    # The full KL over {1, 2, rest} with rest = 0.2 in both.
    full = 0.5 * math.log(0.5 / 0.2) + 0.3 * math.log(0.3 / 0.6)
    assert coarse_kl(p, q) == pytest.approx(full)
    # Token 2 missing from q's top list: it joins the rest bucket, which can only lower KL.
    q_short = PositionScore(math.log(0.2), ((9, math.log(0.6)), (1, math.log(0.2))))
    assert 0.0 <= coarse_kl(p, q_short)


def test_kl_and_nll_change_come_from_teacher_forced_scores() -> None:
    ref_scores = (PositionScore(math.log(0.9), ((5, math.log(0.9)),)),)
    ref = _ref((5,), ref_scores)
    same = compare(ref, GreedyAnswer((256, 120), (5,), "length"), ref_scores)
    assert same.kl == pytest.approx(0.0, abs=1e-12) and same.nll_delta == pytest.approx(0.0)
    worse = (PositionScore(math.log(0.5), ((5, math.log(0.5)),)),)
    moved = compare(ref, GreedyAnswer((256, 120), (5,), "length"), worse)
    assert moved.kl == pytest.approx(0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5))
    assert moved.nll_delta == pytest.approx(math.log(0.9) - math.log(0.5))


def test_a_spec_judges_its_own_measure_and_says_how_far_it_is() -> None:
    ref = _ref((1, 2, 3, 4))
    half = QualityResult((compare(ref, GreedyAnswer((256, 120), (1, 2, 0, 0), "length")),))
    assert parse_quality("quality>=0.5").passes(half)
    assert not parse_quality("quality>=0.6").passes(half)
    assert not parse_quality("quality_exact>=0.5").passes(half)
    assert parse_quality("quality>=0.6").constraint(half) == pytest.approx(0.1)
    assert parse_quality("quality>=0.4").constraint(half) == pytest.approx(-0.1)
    # No scores, no KL: a KL spec cannot pass on answers alone.
    assert not parse_quality("quality_kl<=0.1").passes(half)
    assert parse_quality("quality_kl<=0.1").constraint(half) == 1.0


def test_a_divergence_says_how_close_the_reference_was_to_choosing_otherwise() -> None:
    scores = (
        PositionScore(math.log(0.5), ((1, math.log(0.5)), (2, math.log(0.45)))),
        PositionScore(math.log(0.9), ((3, math.log(0.9)),)),
    )
    ref = _ref((1, 3), scores)
    tie = compare(ref, GreedyAnswer((256, 120), (2, 3), "length"))
    assert tie.diverged_at == 0 and tie.margin == pytest.approx(math.log(0.5 / 0.45))
    unknown = compare(ref, GreedyAnswer((256, 120), (1, 7), "length"))
    assert unknown.diverged_at == 1 and unknown.margin is None  # 7 not in the top-k
    assert compare(ref, GreedyAnswer((256, 120), (1, 3), "length")).margin is None


def test_a_divergence_at_a_tie_of_the_reference_is_not_held_against_the_new_config() -> None:
    tied_scores = (
        PositionScore(math.log(0.4), ((1, math.log(0.4)), (2, math.log(0.4)))),
        PositionScore(math.log(0.9), ((3, math.log(0.9)),)),
    )
    ref = _ref((1, 3), tied_scores)
    flip = compare(ref, GreedyAnswer((256, 120), (2, 5), "length"))
    assert flip.diverged_at == 0 and flip.tied and flip.agreement == 1.0
    real = compare(_ref((1, 3), tied_scores), GreedyAnswer((256, 120), (1, 5), "length"))
    assert not real.tied and real.agreement == 0.5  # 5 is not even among the candidates
    result = QualityResult((flip, real))
    assert result.exact == 0.5 and result.to_json()["tied"] == 1
