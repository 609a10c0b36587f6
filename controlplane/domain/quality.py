"""Whether a config still answers like the reference: the quality spec, the probe set and
the measures, as plain values.

A probe set is a few short prompts decoded greedily. The answers recorded at a reference
config are compared with the answers of a new config three ways:

- ``exact``: the share of prompts whose greedy answer is token for token the reference's.
- ``agreement`` (the spec's plain ``quality``): per prompt, the share of the reference
  answer reproduced before the first differing token, averaged over prompts. Greedy decoding
  makes everything after a divergence a different continuation, so only the prefix counts.
- ``kl``: per answer position, the KL divergence from the reference config's next-token
  distribution to the new config's, both scored on the *reference* answer (teacher forcing),
  averaged over positions and prompts. Engines report only the top-k log-probabilities, so
  it is computed over the tokens both top-k lists hold plus one bucket for the rest: a
  coarse-graining, hence a lower bound of the true KL. ``nll_delta`` (how many nats per
  token less likely the new config finds the reference answer) comes with it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Literal

from controlplane.domain.errors import ValidationError

QualityMeasure = Literal["agreement", "exact", "kl"]
ALL_MEASURES: tuple[QualityMeasure, ...] = ("agreement", "exact", "kl")
_NAMES: dict[str, QualityMeasure] = {
    "quality": "agreement",
    "quality_exact": "exact",
    "quality_kl": "kl",
}
_SPEC = re.compile(r"^(?P<name>quality\w*)\s*(?P<op>>=|<=)\s*(?P<v>\d+(?:\.\d+)?)(?P<pct>%)?$")

MAX_PROBE_PROMPTS = 256
MAX_PROMPT_CHARS = 2000
MAX_PROBE_TOKENS = 64
DEFAULT_PROBE_TOKENS = 16
DEFAULT_TOP_K = 5
SHOWN_TOKENS = 4  # tokens of evidence kept from a divergence on
# A divergence where the reference found both tokens equally likely (within this many nats)
# is a tie in the reference itself: it had no unique greedy answer there, and which token
# wins is rounding (bf16 logits tie exactly and often). Not counted against the new config.
TIE_NATS = 1e-6


def is_quality_spec(text: str) -> bool:
    return text.strip().lower().startswith("quality")


@dataclass(frozen=True)
class QualitySpec:
    """``quality>=0.98``: agreement, exact match (``>=``, a share in (0, 1]) or KL (``<=``)."""

    measure: QualityMeasure
    threshold: float

    def __post_init__(self) -> None:
        if self.measure == "kl":
            if not 0.0 < self.threshold <= 10.0:
                raise ValidationError("quality_kl must be in (0, 10] nats", field="slo")
        elif not 0.0 < self.threshold <= 1.0:
            raise ValidationError(f"{self.name} must be in (0, 1]", field="slo")

    @property
    def name(self) -> str:
        return {"agreement": "quality", "exact": "quality_exact", "kl": "quality_kl"}[self.measure]

    def spec(self) -> str:
        op = "<=" if self.measure == "kl" else ">="
        return f"{self.name}{op}{self.threshold:.6g}"

    def value_of(self, result: QualityResult) -> float | None:
        return {"agreement": result.agreement, "exact": result.exact, "kl": result.kl}[
            self.measure
        ]

    def passes(self, result: QualityResult) -> bool:
        value = self.value_of(result)
        if value is None:
            return False
        return value <= self.threshold if self.measure == "kl" else value >= self.threshold

    def constraint(self, result: QualityResult) -> float:
        """Optuna's convention: <= 0 when feasible; the distance from the threshold."""
        value = self.value_of(result)
        if value is None:
            return 1.0
        if self.measure == "kl":
            return (value - self.threshold) / self.threshold
        return self.threshold - value


def parse_quality(text: str) -> QualitySpec:
    """Parse ``quality>=0.98``, ``quality>=98%``, ``quality_exact>=0.9``, ``quality_kl<=0.02``.

    Raises:
        ValidationError: another form, an unknown measure, or the wrong direction.
    """
    raw = text.strip().lower()
    m = _SPEC.match(raw)
    if m is None:
        raise ValidationError(
            f"cannot parse quality spec {text!r}: expected e.g. 'quality>=0.98', "
            "'quality_exact>=0.9' or 'quality_kl<=0.02'",
            field="slo",
        )
    measure = _NAMES.get(m["name"])
    if measure is None:
        raise ValidationError(
            f"unknown quality measure {m['name']!r} (known: {', '.join(_NAMES)})", field="slo"
        )
    want = "<=" if measure == "kl" else ">="
    if m["op"] != want:
        raise ValidationError(
            f"{m['name']} is bounded with {want!r}, e.g. '{m['name']}{want}"
            f"{'0.02' if measure == 'kl' else '0.98'}'",
            field="slo",
        )
    value = float(m["v"]) / (100 if m["pct"] else 1)
    return QualitySpec(measure, value)


# -- the probe set ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbePrompt:
    id: str
    prompt: str
    max_tokens: int = DEFAULT_PROBE_TOKENS


def parse_probe_set(text: str, *, source: str = "prompts") -> tuple[ProbePrompt, ...]:
    """A JSONL probe set: one ``{"prompt": ..., "id"?: ..., "max_tokens"?: ...}`` per line.

    Raises:
        ValidationError: not JSONL, no prompt, a bad field, duplicate ids, too many prompts.
    """
    prompts: list[ProbePrompt] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{source}: line {number}"
        try:
            item = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            msg = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            raise ValidationError(f"{where} is not JSON ({msg})", field="prompts") from None
        if not isinstance(item, dict):
            raise ValidationError(f"{where} is not a JSON object", field="prompts")
        prompt = item.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            raise ValidationError(f"{where} has no non-empty string 'prompt'", field="prompts")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise ValidationError(
                f"{where}: the prompt is longer than {MAX_PROMPT_CHARS} characters",
                field="prompts",
            )
        pid = item.get("id", f"p{number}")
        if not isinstance(pid, str | int) or isinstance(pid, bool) or not str(pid):
            raise ValidationError(f"{where}: 'id' must be a string", field="prompts")
        pid = str(pid)[:64]
        if pid in seen:
            raise ValidationError(f"{where}: duplicate id {pid!r}", field="prompts")
        seen.add(pid)
        tokens = item.get("max_tokens", DEFAULT_PROBE_TOKENS)
        if isinstance(tokens, bool) or not isinstance(tokens, int):
            raise ValidationError(f"{where}: 'max_tokens' must be an integer", field="prompts")
        if not 1 <= tokens <= MAX_PROBE_TOKENS:
            raise ValidationError(
                f"{where}: 'max_tokens' must be between 1 and {MAX_PROBE_TOKENS}",
                field="prompts",
            )
        prompts.append(ProbePrompt(pid, prompt, tokens))
        if len(prompts) > MAX_PROBE_PROMPTS:
            raise ValidationError(
                f"{source}: more than {MAX_PROBE_PROMPTS} prompts", field="prompts"
            )
    if not prompts:
        raise ValidationError(f"{source}: the probe set is empty", field="prompts")
    return tuple(prompts)


def probe_set_jsonl(prompts: Sequence[ProbePrompt]) -> str:
    return "".join(
        json.dumps({"id": p.id, "prompt": p.prompt, "max_tokens": p.max_tokens}) + "\n"
        for p in prompts
    )


# -- what an engine answers ------------------------------------------------------------------


@dataclass(frozen=True)
class PositionScore:
    """One answer position scored by the engine: the answer token's log-probability and the
    top alternatives (token id, logprob)."""

    logprob: float
    top: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True)
class GreedyAnswer:
    prompt_tokens: tuple[int, ...]
    tokens: tuple[int, ...]
    finish_reason: str


@dataclass(frozen=True)
class ReferenceAnswer:
    prompt: ProbePrompt
    answer: GreedyAnswer
    scores: tuple[PositionScore, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.prompt.id,
            "prompt": self.prompt.prompt,
            "max_tokens": self.prompt.max_tokens,
            "prompt_tokens": list(self.answer.prompt_tokens),
            "tokens": list(self.answer.tokens),
            "finish_reason": self.answer.finish_reason,
            "scores": None
            if self.scores is None
            else [[s.logprob, [list(t) for t in s.top]] for s in self.scores],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReferenceAnswer:
        scores = data.get("scores")
        return cls(
            prompt=ProbePrompt(str(data["id"]), str(data["prompt"]), int(data["max_tokens"])),
            answer=GreedyAnswer(
                tuple(int(t) for t in data["prompt_tokens"]),
                tuple(int(t) for t in data["tokens"]),
                str(data["finish_reason"]),
            ),
            scores=None
            if scores is None
            else tuple(
                PositionScore(float(lp), tuple((int(t), float(v)) for t, v in top))
                for lp, top in scores
            ),
        )


# -- the measures ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptQuality:
    id: str
    reference_tokens: int
    matched: int
    diverged_at: int | None  # index of the first differing token; None: identical
    kl: float | None = None
    nll_delta: float | None = None
    expected: tuple[int, ...] = ()  # the reference's tokens from the divergence on (a few)
    got: tuple[int, ...] = ()  # the new config's tokens there
    margin: float | None = None
    """At the divergence, how much more likely (nats) the reference config found its own
    token than the new config's choice; small: the reference sat on a near-tie. ``None``
    when unknown (no scores, or the new token was not among the reference's top-k)."""

    @property
    def tied(self) -> bool:
        """Diverged where the reference itself was tied: scored as agreeing."""
        return self.margin is not None and self.margin <= TIE_NATS

    @property
    def agreement(self) -> float:
        if self.tied or not self.reference_tokens:
            return 1.0
        return self.matched / self.reference_tokens

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "agreement": round(self.agreement, 4),
            "diverged_at": self.diverged_at,
            "reference_tokens": self.reference_tokens,
            "kl": _sig(self.kl),
            "nll_delta": _sig(self.nll_delta),
            "expected": list(self.expected),
            "got": list(self.got),
            "margin": _sig(self.margin),
            "tied": self.tied,
        }


@dataclass(frozen=True)
class QualityResult:
    prompts: tuple[PromptQuality, ...]
    config: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    @property
    def exact(self) -> float:
        same = [1.0 if p.diverged_at is None or p.tied else 0.0 for p in self.prompts]
        return _mean(same) or 0.0

    @property
    def agreement(self) -> float:
        return _mean([p.agreement for p in self.prompts]) or 0.0

    @property
    def kl(self) -> float | None:
        return _mean([p.kl for p in self.prompts if p.kl is not None])

    @property
    def nll_delta(self) -> float | None:
        return _mean([p.nll_delta for p in self.prompts if p.nll_delta is not None])

    def worst(self, n: int = 5) -> tuple[PromptQuality, ...]:
        ranked = sorted(self.prompts, key=lambda p: (p.agreement, -(p.kl or 0.0), p.id))
        return tuple(p for p in ranked[:n] if p.diverged_at is not None or (p.kl or 0) > 0)

    def to_json(self, *, worst: int = 5) -> dict[str, Any]:
        kl, nll = self.kl, self.nll_delta
        return {
            "prompts": len(self.prompts),
            "exact": round(self.exact, 4),
            "agreement": round(self.agreement, 4),
            "kl": _sig(kl),
            "nll_delta": _sig(nll),
            "diverged": sum(p.diverged_at is not None for p in self.prompts),
            "tied": sum(p.tied for p in self.prompts),
            "duration_s": round(self.duration_s, 3),
            "config": self.config,
            "worst": [p.to_json() for p in self.worst(worst)],
        }


def compare(
    reference: ReferenceAnswer,
    answer: GreedyAnswer,
    scores: Sequence[PositionScore] | None = None,
) -> PromptQuality:
    """One prompt's measures; ``scores`` are the new config's scores of the reference
    answer (teacher-forced), needed for KL and the log-likelihood change."""
    ref = reference.answer.tokens
    got = answer.tokens
    matched = 0
    for a, b in zip(ref, got, strict=False):
        if a != b:
            break
        matched += 1
    diverged: int | None = None
    if matched < max(len(ref), len(got)):
        diverged = matched
    kl = nll = None
    if scores is not None and reference.scores is not None and reference.scores:
        pairs = list(zip(reference.scores, scores, strict=False))
        if pairs:
            kl = math.fsum(coarse_kl(p, q) for p, q in pairs) / len(pairs)
            nll = math.fsum(p.logprob - q.logprob for p, q in pairs) / len(pairs)
    at = matched if diverged is not None else len(ref)
    margin = None
    if diverged is not None and reference.scores and at < min(len(ref), len(got)):
        if at < len(reference.scores):
            here = reference.scores[at]
            alternative = dict(here.top).get(got[at])
            if alternative is not None:
                margin = max(here.logprob - alternative, 0.0)
    return PromptQuality(
        id=reference.prompt.id,
        reference_tokens=len(ref),
        matched=matched,
        diverged_at=diverged,
        kl=kl,
        nll_delta=nll,
        expected=tuple(ref[at : at + SHOWN_TOKENS]),
        got=tuple(got[at : at + SHOWN_TOKENS]),
        margin=margin,
    )


def coarse_kl(p: PositionScore, q: PositionScore) -> float:
    """KL(p || q) over the tokens both top-k lists name, plus one bucket for all other
    tokens: a lower bound of the full KL (coarse-graining never increases it)."""
    p_top = dict(p.top)
    q_top = dict(q.top)
    shared = [t for t in p_top if t in q_top]
    total = 0.0
    p_rest = 1.0
    q_rest = 1.0
    for t in shared:
        pi, qi = math.exp(p_top[t]), math.exp(q_top[t])
        p_rest -= pi
        q_rest -= qi
        total += pi * (p_top[t] - q_top[t])
    p_rest, q_rest = max(p_rest, 0.0), max(q_rest, 1e-12)
    if p_rest > 1e-12:
        total += p_rest * math.log(p_rest / q_rest)
    return max(total, 0.0)


def _sig(value: float | None) -> float | None:
    """Four significant digits: a KL of 3e-8 must not print as 0."""
    return None if value is None else float(f"{value:.4g}")


def _mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None
