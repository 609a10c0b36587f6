"""The quality probe: record reference answers, check a config against them, and run the
check beside the guard's traffic during a bake.

The probe sends its prompts one at a time (never a burst): it shares the engine with the
traffic the guard measures latency on, and one extra request in flight moves a p99 far
less than 32 at once (measured in docs/quality.md). Per prompt it costs one greedy
completion and, where the kind returns logprobs, one scoring request of the reference
answer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from collections.abc import Sequence
from importlib import resources
from typing import Any

from sqlalchemy.orm import Session

from controlplane.domain import ConflictError
from controlplane.domain import EngineConfig
from controlplane.domain import ValidationError
from controlplane.domain.quality import DEFAULT_TOP_K
from controlplane.domain.quality import ProbePrompt
from controlplane.domain.quality import PromptQuality
from controlplane.domain.quality import QualityMeasure
from controlplane.domain.quality import QualityResult
from controlplane.domain.quality import QualitySpec
from controlplane.domain.quality import ReferenceAnswer
from controlplane.domain.quality import compare
from controlplane.domain.quality import parse_probe_set
from controlplane.domain.quality import parse_quality
from controlplane.engines.base import EngineAdapter
from controlplane.engines.registry import available
from controlplane.store import quality as quality_store
from controlplane.store import rollouts
from controlplane.store.models import EngineRow
from controlplane.store.models import SloRow

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 30.0
ALWAYS_QUALITY_KNOBS = frozenset({"precision"})


def default_probe_set() -> tuple[ProbePrompt, ...]:
    """The shipped 32 short prompts (code, prose, lists, numbers, markup)."""
    text = resources.files("controlplane.guard").joinpath("probe_prompts.jsonl").read_text()
    return parse_probe_set(text, source="default probe set")


def touches_quality(changes: Mapping[str, Any], quality_knobs: frozenset[str]) -> bool:
    """Whether a change may alter what the model answers: precision always, plus the
    knobs the engine's adapter marks."""
    return bool(set(changes) & (ALWAYS_QUALITY_KNOBS | quality_knobs))


def check_supported(
    spec: QualitySpec, measures: frozenset[QualityMeasure], *, engine: str, kind: str
) -> None:
    """Raises:
    ValidationError: the engine kind cannot provide the spec's measure."""
    if spec.measure not in measures:
        offered = ", ".join(sorted(measures)) or "none"
        need = " (it needs an engine that returns logprobs)" if spec.measure == "kl" else ""
        raise ValidationError(
            f"engine {engine!r} (kind {kind!r}) cannot provide the quality measure "
            f"{spec.measure!r}{need}; it provides: {offered}",
            field="slo",
        )


def record(
    adapter: EngineAdapter,
    prompts: Sequence[ProbePrompt],
    *,
    top_k: int = DEFAULT_TOP_K,
    timeout_s: float = REQUEST_TIMEOUT_S,
) -> tuple[ReferenceAnswer, ...]:
    """The engine's answers now, to be stored as the reference.

    Raises:
        ValidationError: the kind cannot be probed at all.
        EngineUnreachableError / EngineRejectedError: from the engine.
    """
    if not adapter.quality_measures:
        raise ValidationError(
            f"engine {adapter.target.name!r} (kind {adapter.kind!r}) cannot be probed for quality",
            field="engine",
        )
    scored = "kl" in adapter.quality_measures
    answers = []
    for prompt in prompts:
        answer = adapter.greedy(prompt.prompt, max_tokens=prompt.max_tokens, timeout_s=timeout_s)
        scores = None
        if scored and answer.tokens:
            scores = adapter.score(
                answer.prompt_tokens + answer.tokens,
                start=len(answer.prompt_tokens),
                top_k=top_k,
                timeout_s=timeout_s,
            )
        answers.append(ReferenceAnswer(prompt, answer, scores))
    return tuple(answers)


def check(
    adapter: EngineAdapter,
    reference: Sequence[ReferenceAnswer],
    *,
    top_k: int = DEFAULT_TOP_K,
    config: Mapping[str, Any] | None = None,
    timeout_s: float = REQUEST_TIMEOUT_S,
    stop: threading.Event | None = None,
) -> QualityResult:
    """Compare the engine's answers now with ``reference``.

    Raises:
        EngineUnreachableError / EngineRejectedError: from the engine.
    """
    started = time.monotonic()
    scored = "kl" in adapter.quality_measures
    found: list[PromptQuality] = []
    for ref in reference:
        if stop is not None and stop.is_set():
            break
        answer = adapter.greedy(
            ref.prompt.prompt, max_tokens=ref.prompt.max_tokens, timeout_s=timeout_s
        )
        scores = None
        if scored and ref.scores and ref.answer.tokens:
            scores = adapter.score(
                ref.answer.prompt_tokens + ref.answer.tokens,
                start=len(ref.answer.prompt_tokens),
                top_k=top_k,
                timeout_s=timeout_s,
            )
        found.append(compare(ref, answer, scores))
    return QualityResult(
        tuple(found), config=dict(config or {}), duration_s=time.monotonic() - started
    )


class BackgroundProbe:
    """One :func:`check` in a thread beside the bake; the bake polls :attr:`done`. It owns
    ``adapter`` (its own client, apart from the runner's) and closes it when done."""

    def __init__(
        self,
        adapter: EngineAdapter,
        reference: Sequence[ReferenceAnswer],
        *,
        top_k: int,
        config: Mapping[str, Any],
    ) -> None:
        self.result: QualityResult | None = None
        self.error: str | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._run,
            args=(adapter, tuple(reference), top_k, dict(config)),
            name="quality-probe",
            daemon=True,
        )

    def start(self) -> BackgroundProbe:
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout_s: float) -> bool:
        return self._done.wait(timeout_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(REQUEST_TIMEOUT_S)

    def _run(
        self,
        adapter: EngineAdapter,
        reference: tuple[ReferenceAnswer, ...],
        top_k: int,
        config: dict[str, Any],
    ) -> None:
        try:
            self.result = check(adapter, reference, top_k=top_k, config=config, stop=self._stop)
        except Exception as exc:  # noqa: BLE001 - reported as the probe's verdict
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            adapter.close()
            self._done.set()


def verdict_json(spec: QualitySpec, result: QualityResult) -> dict[str, Any]:
    """What the rollout's evidence keeps of a probe: the spec, the measures, the worst
    prompts (which diverged, at which token)."""
    return {
        "spec": spec.spec(),
        "passed": spec.passes(result),
        "constraint": round(spec.constraint(result), 6),
        **result.to_json(),
    }


def summary(spec: QualitySpec, result: QualityResult) -> str:
    value = spec.value_of(result)
    shown = "n/a" if value is None else f"{value:.4f}"
    worst = result.worst(3)
    where = ", ".join(
        f"{p.id} at token {p.diverged_at}"
        for p in worst
        if p.diverged_at is not None and not p.tied
    )
    diverged = sum(p.diverged_at is not None and not p.tied for p in result.prompts)
    tied = sum(p.tied for p in result.prompts)
    text = (
        f"{spec.spec()} failed: {spec.name} {shown} over {len(result.prompts)} prompts "
        f"({diverged} diverged" + (f", {tied} at ties of the reference)" if tied else ")")
    )
    return f"{text}; first divergences: {where}" if where else text


# -- what the CLI and the API call -----------------------------------------------------------


def kind_measures(kind: str) -> frozenset[QualityMeasure]:
    """What an engine kind's adapter says it can measure, without building one."""
    factory = available().get(kind)
    return frozenset(getattr(factory, "quality_measures", frozenset()))


def set_spec(session: Session, *, engine: EngineRow, text: str, actor: str) -> SloRow:
    """Set the engine's quality spec, refused when it cannot be judged: a measure the kind
    cannot provide, or no recorded reference answers to compare with.

    Raises:
        ValidationError: the spec does not parse, names an unsupported measure, or the
            engine has no reference answers yet.
    """
    spec = parse_quality(text)
    check_supported(spec, kind_measures(engine.kind), engine=engine.name, kind=engine.kind)
    quality_store.require_reference(session, engine)
    return quality_store.set_quality(session, engine_id=engine.id, spec=spec, actor=actor)


def require_settled(session: Session, engine: EngineRow) -> None:
    """A reference is recorded on a settled engine, never mid-rollout (it would record
    whatever the bake happens to serve).

    Raises:
        ConflictError: a rollout of the engine is in flight.
    """
    active = rollouts.active_rollout(session, engine.id)
    if active is not None:
        raise ConflictError(
            f"engine {engine.name!r} is busy: rollout {active.id} is {active.state}; "
            "record the reference once it has finished"
        )


def served_config(adapter: EngineAdapter, expect: Mapping[str, Any] | None) -> EngineConfig:
    """The config the engine serves, which must be ``expect`` where that is given: the
    probe records and checks what serves now, and changing it is the guard's job.

    Raises:
        ValidationError: an unknown knob or value, or the engine serves something else.
    """
    current = adapter.current_config()
    if not expect:
        return current
    wanted = adapter.search_space().validate(expect)
    for knob, value in wanted.items():
        if current.get(knob) != value:
            raise ValidationError(
                f"engine {adapter.target.name!r} serves {knob}={current.get(knob)!r}, not "
                f"{value!r}: apply the config first (`cplane engine apply "
                f"{adapter.target.name} {knob}={value}`), then probe it",
                field="config",
            )
    return current
