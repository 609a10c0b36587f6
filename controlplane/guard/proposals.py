"""Turning "set these knobs" into a pending rollout, or refusing it before anything moves.

Everything that can be known before touching the engine is checked here, inside the
caller's transaction: the knobs and values against the engine's own search space, that the
change changes something, that the engine has SLOs to be judged by, and (through the
database) that no other rollout is in flight. A dry run stops after the checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from controlplane.domain import ConfigValue
from controlplane.domain import ValidationError
from controlplane.domain.canary import parse_canary_plan
from controlplane.engines.base import EngineAdapter
from controlplane.guard.canary import replicated
from controlplane.schemas.rollouts import RolloutPlan
from controlplane.store import configs
from controlplane.store import rollouts
from controlplane.store import slos as slo_store
from controlplane.store.models import EngineRow

NEEDS_APPROVAL = frozenset({"tuner", "schedule"})


def propose(
    session: Session,
    *,
    engine: EngineRow,
    adapter: EngineAdapter,
    changes: Mapping[str, Any],
    reason: str,
    actor: str,
    bake_s: float,
    dry_run: bool = False,
    quality: str | None = None,
    canary: str | None = None,
) -> RolloutPlan:
    """Validate a change and, unless ``dry_run``, record it as a pending rollout.

    Raises:
        ValidationError: unknown knob, illegal value, no change, no SLO to judge it by, or
            a canary plan that does not parse or an engine without replicas to canary on.
        EngineUnreachableError: the engine's current config could not be read.
        ConflictError: another rollout of this engine is in flight.

    ``quality`` is a quality spec the proposer wants this change judged by (the tuner's
    run spec); without it the guard uses the engine's own, if any.
    """
    steps = parse_canary_plan(canary) if canary is not None else None
    if steps is not None and replicated(adapter) is None:
        raise ValidationError(
            f"engine {engine.name!r} has no replicas behind a proxy to canary on: a canary "
            "needs kind=process with two or more replicas",
            field="canary",
        )
    validated: dict[str, ConfigValue] = adapter.search_space().validate(changes)
    current = adapter.current_config()
    target = {**current, **validated}
    if target == current:
        raise ValidationError(
            f"nothing to change: engine {engine.name!r} already serves {dict(validated)}",
            field="changes",
        )
    specs = [s.spec() for s in slo_store.engine_slos(session, engine.id)]
    if not specs:
        raise ValidationError(
            f"engine {engine.name!r} has no SLO to judge a change by: add one with "
            f"`cplane slo set {engine.name} 'p99_ms<=500'`",
            field="slo",
        )
    awaiting = engine.approval_mode == "manual" and reason in NEEDS_APPROVAL
    plan = RolloutPlan(
        engine=engine.name,
        from_config=current,
        to_config=target,
        changes=validated,
        slos=specs,
        bake_s=bake_s,
        awaiting_approval=awaiting,
        canary=[s.spec() for s in steps] if steps is not None else None,
    )
    if dry_run:
        return plan

    latest = configs.latest_config(session, engine.id)
    if latest is None or latest.config != current:
        latest = configs.record_config(
            session, engine_id=engine.id, config=current, source="observed", actor=actor
        )
    if configs.last_known_good(session, engine.id) is None:
        # It was serving before anyone changed it: that is the first known good.
        configs.mark_last_known_good(session, latest)
    to_row = configs.record_config(
        session, engine_id=engine.id, config=target, source=reason, actor=actor
    )
    row = rollouts.start_rollout(
        session,
        engine_id=engine.id,
        from_config_id=latest.id,
        to_config_id=to_row.id,
        reason=reason,
        actor=actor,
        evidence={
            "changes": validated,
            "from_config": current,
            "to_config": target,
            "bake_s": bake_s,
            "awaiting_approval": awaiting,
            **({"quality": quality} if quality else {}),
            **({"canary_plan": canary} if steps is not None else {}),
        },
    )
    return plan.model_copy(update={"rollout_id": row.id})
