"""The fleet at a glance, in a fixed number of queries whatever its size: one page of
engines with each one's last known good config, SLOs, rollout in flight and active tuning
run. The web UI's fleet page reads this; per-engine lookups would be N+1 queries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import cast

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.domain import SLO
from controlplane.domain import redact_url
from controlplane.domain.slo import SloKind
from controlplane.store.models import ACTIVE_ROLLOUT_STATES
from controlplane.store.models import EngineConfigRow
from controlplane.store.models import EngineRow
from controlplane.store.models import RolloutRow
from controlplane.store.models import SloRow
from controlplane.store.models import TuningRunRow
from controlplane.store.tuning import ACTIVE_STATES as ACTIVE_RUN_STATES


@dataclass(frozen=True)
class FleetEngine:
    id: int
    name: str
    kind: str
    url: str
    labels: dict[str, str]
    config: dict[str, Any] | None
    config_version: int | None
    slos: list[str] = field(default_factory=list)
    rollout_id: int | None = None
    rollout_state: str | None = None
    tuning_run_id: int | None = None
    tuning_state: str | None = None


@dataclass(frozen=True)
class FleetPage:
    engines: list[FleetEngine]
    total: int
    offset: int
    limit: int
    label_keys: list[str]


def _slo(row: SloRow) -> SLO:
    kind = cast(SloKind, row.kind)
    return SLO(kind=kind, threshold=row.threshold, quantile=row.quantile, window_s=row.window_s)


@dataclass(frozen=True)
class _Listed:
    id: int
    name: str
    kind: str
    url: str
    labels: dict[str, str]


def _label_filter(rows: list[_Listed], labels: Mapping[str, str]) -> list[_Listed]:
    # Labels are JSON (JSONB on PostgreSQL, text on SQLite): filtered here for one code path.
    return [r for r in rows if all(r.labels.get(k) == v for k, v in labels.items())]


def fleet_page(
    session: Session,
    *,
    labels: Mapping[str, str] | None = None,
    name_contains: str = "",
    offset: int = 0,
    limit: int = 200,
) -> FleetPage:
    # Columns, not ORM rows: a thousand engines are listed on every fleet page view.
    query = select(
        EngineRow.id, EngineRow.name, EngineRow.kind, EngineRow.url, EngineRow.labels
    ).order_by(EngineRow.name)
    if name_contains:
        query = query.where(
            func.lower(EngineRow.name).contains(name_contains.lower(), autoescape=True)
        )
    everyone = [_Listed(*row) for row in session.execute(query)]
    keys = sorted({k for r in everyone for k in r.labels})
    matching = _label_filter(everyone, labels or {})
    rows = matching[offset : offset + limit]
    ids = [r.id for r in rows]
    configs: dict[int, tuple[int, dict[str, Any]]] = {}
    slos: dict[int, list[str]] = {}
    active: dict[int, tuple[int, str]] = {}
    runs: dict[int, tuple[int, str]] = {}
    if ids:
        for engine_id, version, config in session.execute(
            select(EngineConfigRow.engine_id, EngineConfigRow.version, EngineConfigRow.config)
            .where(EngineConfigRow.engine_id.in_(ids))
            .where(EngineConfigRow.is_last_known_good.is_(True))
        ):
            configs[engine_id] = (version, config)
        for s in session.scalars(
            select(SloRow).where(SloRow.engine_id.in_(ids)).order_by(SloRow.name)
        ):
            slos.setdefault(s.engine_id, []).append(_slo(s).spec())
        for engine_id, rollout_id, state in session.execute(
            select(RolloutRow.engine_id, RolloutRow.id, RolloutRow.state).where(
                RolloutRow.engine_id.in_(ids), RolloutRow.state.in_(ACTIVE_ROLLOUT_STATES)
            )
        ):
            active[engine_id] = (rollout_id, state)
        for engine_id, run_id, state in session.execute(
            select(TuningRunRow.engine_id, TuningRunRow.id, TuningRunRow.state).where(
                TuningRunRow.engine_id.in_(ids), TuningRunRow.state.in_(ACTIVE_RUN_STATES)
            )
        ):
            runs[engine_id] = (run_id, state)
    out = []
    for e in rows:
        c, current, run = configs.get(e.id), active.get(e.id), runs.get(e.id)
        out.append(
            FleetEngine(
                id=e.id,
                name=e.name,
                kind=e.kind,
                url=redact_url(e.url),
                labels=dict(e.labels),
                config=None if c is None else dict(c[1]),
                config_version=None if c is None else c[0],
                slos=slos.get(e.id, []),
                rollout_id=None if current is None else current[0],
                rollout_state=None if current is None else current[1],
                tuning_run_id=None if run is None else run[0],
                tuning_state=None if run is None else run[1],
            )
        )
    return FleetPage(out, total=len(matching), offset=offset, limit=limit, label_keys=keys)


def slos_of(session: Session, engine_ids: list[int]) -> dict[int, list[SLO]]:
    out: dict[int, list[SLO]] = {}
    for s in session.scalars(select(SloRow).where(SloRow.engine_id.in_(engine_ids))):
        out.setdefault(s.engine_id, []).append(_slo(s))
    return out


def names_of(session: Session, engine_ids: list[int]) -> dict[int, str]:
    rows = session.execute(
        select(EngineRow.id, EngineRow.name).where(EngineRow.id.in_(engine_ids))
    )
    return {int(i): str(n) for i, n in rows}


def engine_names(session: Session) -> dict[int, str]:
    """Every engine's name by id (list pages label rows with it)."""
    return {int(i): str(n) for i, n in session.execute(select(EngineRow.id, EngineRow.name))}
