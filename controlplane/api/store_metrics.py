"""Series on ``/metrics`` read from the store and the chaos state at scrape time.

Alert rules need them as series, and they are facts of the store, not events of this
process: a tuning run failed by another replica, or a chaos fault left behind by a crashed
process, must show on every replica's ``/metrics``. One grouped query per scrape.

- ``cplane_tuning_runs{engine, state}``: runs per engine and state, every state of every
  registered engine present (0 included), so a rule sees the first failed run of an engine
  as an increase instead of a series that appears from nothing.
- ``cplane_chaos_fault_overdue_seconds{fault}``: for each fault whose undo record is still
  on disk, seconds past its watchdog deadline (negative while it may still run).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from controlplane.settings import Settings
from controlplane.store.database import SessionFactory
from controlplane.store.models import EngineRow
from controlplane.store.models import TuningRunRow
from controlplane.store.tuning import ACTIVE_STATES
from controlplane.store.tuning import TERMINAL_STATES

log = logging.getLogger(__name__)

TUNING_STATES = (*ACTIVE_STATES, *TERMINAL_STATES)


class StoreMetrics(Collector):
    def __init__(
        self,
        sessions: SessionFactory,
        chaos_state_dir: Path,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = sessions
        self._chaos_dir = chaos_state_dir
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        runs = GaugeMetricFamily(
            "cplane_tuning_runs", "Tuning runs by engine and state.", labels=["engine", "state"]
        )
        try:
            counts = self._tuning_counts()
        except SQLAlchemyError:
            # The store is down: /metrics still answers (collectors, GPU) without these, and
            # the collectors' own series (dropped samples, write failures) say why.
            log.debug("tuning run counts unavailable", exc_info=True)
            counts = None
        if counts is not None:
            for (engine, state), n in sorted(counts.items()):
                runs.add_metric([engine, state], n)
            yield runs
        overdue = GaugeMetricFamily(
            "cplane_chaos_fault_overdue_seconds",
            "Seconds a chaos fault still applied is past its watchdog deadline (negative: "
            "time left).",
            labels=["fault"],
        )
        now = self._clock()
        for fault, deadline in sorted(self._chaos_deadlines().items()):
            overdue.add_metric([fault], now - deadline)
        yield overdue

    def _tuning_counts(self) -> dict[tuple[str, str], int]:
        with self._sessions() as session:
            names = list(session.scalars(select(EngineRow.name)))
            rows = session.execute(
                select(EngineRow.name, TuningRunRow.state, func.count())
                .join(EngineRow, EngineRow.id == TuningRunRow.engine_id)
                .group_by(EngineRow.name, TuningRunRow.state)
            ).all()
        counts = {(name, state): 0 for name in names for state in TUNING_STATES}
        for name, state, n in rows:
            counts[(name, state)] = int(n)
        return counts

    def _chaos_deadlines(self) -> dict[str, float]:
        found: dict[str, float] = {}
        try:
            paths = sorted(self._chaos_dir.glob("*.json"))
        except OSError:
            return found
        for path in paths:
            try:
                state = json.loads(path.read_text())
                found[path.stem] = float(state["deadline"])
            except (OSError, ValueError, KeyError, TypeError):
                continue  # removed or rewritten between glob and read
        return found


def install(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    registry: CollectorRegistry = app.state.metrics_registry
    registry.register(StoreMetrics(app.state.session_factory, settings.chaos_state_dir))
