"""Reading a sweep without an engine: the sweep and prompt-file spellings, the knee, the
saturation point and the regression gate's noise-aware tolerance."""

from __future__ import annotations

from dataclasses import replace

import pytest

from controlplane.domain import ValidationError
from controlplane.schemas.loadtest import LoadTestCreate
from controlplane.schemas.loadtest import parse_prompts
from controlplane.schemas.loadtest import parse_sweep
from tuner.loadtest import StepFigures
from tuner.loadtest import compare
from tuner.loadtest import knee
from tuner.loadtest import saturation


def step(index: int, offered: float, rps: float, p99: float, meets: bool = True) -> StepFigures:
    return StepFigures(
        index=index, offered=offered, throughput_rps=rps, output_tokens_per_s=rps * 8,
        p50_ms=p99 / 3, p90_ms=p99 / 2, p99_ms=p99, ttft_p50_ms=None, ttft_p99_ms=None,
        tpot_ms=None, requests=100, errors=0, rejected=0, error_rate=0.0, meets_slo=meets,
        stable=True, windows=3, throughput_noise=0.03, p99_noise=0.05, duration_s=3.0,
    )  # fmt: skip


CURVE = [
    step(0, 1, 20, 50),
    step(1, 2, 39, 55),
    step(2, 4, 70, 80),
    step(3, 8, 95, 160),
    step(4, 16, 97, 330, meets=False),
    step(5, 32, 96, 700, meets=False),
]


@pytest.mark.parametrize(
    ("text", "kind", "steps"),
    [
        ("1,2,4,8", "concurrency", (1, 2, 4, 8)),
        ("1:16:x2", "concurrency", (1, 2, 4, 8, 16)),
        ("5:20:x1.5", "rate", (5, 7.5, 11.25, 16.875)),
        ("10:40:+10", "rate", (10, 20, 30, 40)),
    ],
)
def test_sweeps_parse(text: str, kind: str, steps: tuple[float, ...]) -> None:
    assert parse_sweep(text, kind=kind) == steps  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("", "concurrency"), ("1,x", "concurrency"), ("1.5,2", "concurrency"),
        ("4,2,1", "concurrency"), ("0,1", "rate"), ("1:10:x1", "rate"), ("10:1:x2", "rate"),
        ("1:10", "rate"), ("1:1e9:+1", "rate"), ("nan", "rate"),
    ],
)  # fmt: skip
def test_bad_sweeps_are_refused_naming_the_field(text: str, kind: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_sweep(text, kind=kind)  # type: ignore[arg-type]
    assert info.value.field == kind


def test_a_request_needs_exactly_one_sweep() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        LoadTestCreate.model_validate({"slo": ["p99_ms<=300"]})
    with pytest.raises(ValueError, match="exactly one"):
        LoadTestCreate.model_validate({"concurrency": "1,2", "rate": "5"})
    assert LoadTestCreate.model_validate({"rate": "5:20:x2"}).steps() == (5, 10, 20)


def test_prompt_files() -> None:
    entries = parse_prompts('{"prompt": "hi", "max_tokens": 4}\n\n{"prompt": "yo"}\n', limit=5)
    assert [(e.prompt, e.max_tokens) for e in entries] == [("hi", 4), ("yo", None)]
    for text, reason in (
        ("", "no prompts"),
        ("not json\n", "line 1"),
        ('{"prompt": "a"}\n["a"]\n', "line 2"),
        ('{"text": "a"}\n', "line 1"),
    ):
        with pytest.raises(ValidationError, match=reason) as info:
            parse_prompts(text, limit=5)
        assert info.value.field == "prompts"
    with pytest.raises(ValidationError, match="more than 1"):
        parse_prompts('{"prompt": "a"}\n{"prompt": "b"}\n', limit=1)


def test_knee_is_the_most_throughput_within_the_slo() -> None:
    found = knee(CURVE)
    assert found is not None and found.offered == 8
    assert knee([replace(s, meets_slo=False) for s in CURVE]) is None


def test_saturation_is_where_more_load_buys_nothing() -> None:
    found = saturation(CURVE, gain=0.05)
    assert found is not None and found.offered == 8
    # A noisy dip before the peak does not call saturation early.
    noisy = [CURVE[0], CURVE[1], replace(CURVE[2], throughput_rps=38), *CURVE[3:]]
    found = saturation(noisy, gain=0.05)
    assert found is not None and found.offered == 8
    # Still rising at the last step: not saturated.
    assert saturation(CURVE[:4], gain=0.05) is None


def test_the_gate_passes_noise_and_names_the_step_that_regressed() -> None:
    same = [replace(s, p99_ms=(s.p99_ms or 0) * 1.04) for s in CURVE]
    verdict = compare(CURVE, same, baseline_id=1, noise_factor=3, min_tolerance=0.05)
    assert not verdict.regressed and verdict.compared == len(CURVE)
    slower = [*CURVE[:2], replace(CURVE[2], p99_ms=120), *CURVE[3:]]
    verdict = compare(CURVE, slower, baseline_id=1, noise_factor=3, min_tolerance=0.05)
    assert [(r.metric, r.offered) for r in verdict.regressions] == [("p99_ms", 4)]
    assert "p99 at 4" in verdict.regressions[0].describe()
    smaller = [*CURVE[:3], replace(CURVE[3], throughput_rps=80), *CURVE[4:]]
    verdict = compare(CURVE, smaller, baseline_id=1, noise_factor=3, min_tolerance=0.05)
    assert [r.metric for r in verdict.regressions] == ["knee_rps"]


def test_the_gate_tolerates_more_where_the_runs_were_noisier() -> None:
    slower = [replace(s, p99_ms=(s.p99_ms or 0) * 1.15) for s in CURVE]
    quiet = compare(CURVE, slower, baseline_id=1, noise_factor=3, min_tolerance=0.05)
    assert quiet.regressed
    noisy_base = [replace(s, p99_noise=0.2) for s in CURVE]
    noisy_now = [replace(s, p99_noise=0.2) for s in slower]
    noisy = compare(noisy_base, noisy_now, baseline_id=1, noise_factor=3, min_tolerance=0.05)
    assert not noisy.regressed
