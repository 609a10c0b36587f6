"""The detectors as one leader job: every ``CP_DETECTORS__INTERVAL_S`` each registered engine
is judged over the stored samples, and alerts of source ``detector`` are raised or resolved.

- ``EngineQPSSwing`` (fingerprint ``detector:qps_swing:<engine id>``): fires when the coefficient
  of variation of the request rate over the window exceeds the threshold with traffic above
  the floor; resolves when the window is calm, or the engine idle.
- ``EngineMemoryLeak`` (``detector:memory_leak:<engine id>``): fires when the newest segment's
  growth per 100k requests reaches the threshold; resolves when a long-enough segment shows
  less than half of it (a fit that cannot be made yet, just after a restart, changes nothing).

Memory is the engine's GPU (``gpu_memory_used_bytes`` of the device its ``gpu_uuid`` or
``gpu`` label names) or, without such a label, its process's RSS as the host collector
stores it (``host_engine_process_resident_memory_bytes{engine=...}``). The job writes under
the leader's fence and leaves no job run (alerts are audited); ticks are counted on
``/metrics`` like other idle firings.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.domain import Series
from controlplane.domain.alerts import AlertSource
from controlplane.domain.scheduler import JobScope
from controlplane.guard.alerting import expire_guard_alerts
from controlplane.scheduler._triggers import interval_trigger
from controlplane.scheduler._types import Firing
from controlplane.scheduler._types import Outcome
from controlplane.scheduler._types import ScheduledJob
from controlplane.scheduler.detectors._analysis import LeakVerdict
from controlplane.scheduler.detectors._analysis import QpsVerdict
from controlplane.scheduler.detectors._analysis import leak
from controlplane.scheduler.detectors._analysis import qps_swing
from controlplane.settings import DetectorSettings
from controlplane.settings import Settings
from controlplane.store import alerts
from controlplane.store import engines
from controlplane.store import jobs
from controlplane.store import samples
from controlplane.store.models import EngineRow
from controlplane.store.models import RolloutRow
from controlplane.store.models import SeriesRow

log = logging.getLogger("controlplane.detectors")

ACTOR = "detector"
RSS = "host_engine_process_resident_memory_bytes"
GPU_USED = "gpu_memory_used_bytes"
REQUESTS = (Series.requests_succeeded.value, Series.requests_failed.value)


@dataclass(frozen=True, slots=True)
class EngineVerdicts:
    engine: str
    qps: QpsVerdict
    leak: LeakVerdict


def request_counter(
    session: Session, engine: str, start: float, end: float
) -> list[tuple[float, float]]:
    """The engine's cumulative request count (succeeded + failed, every label set summed)."""
    total: dict[float, float] = {}
    for metric in REQUESTS:
        for series in samples.fetch_series(
            session, source=engine, metric=metric, start=start, end=end
        ):
            for ts, value in series.points:
                total[ts] = total.get(ts, 0.0) + value
    return sorted(total.items())


def _memory_query(row: EngineRow) -> tuple[str, dict[str, str]]:
    labels: Mapping[str, str] = row.labels or {}
    if "gpu_uuid" in labels:
        return GPU_USED, {"uuid": str(labels["gpu_uuid"])}
    if "gpu" in labels:
        return GPU_USED, {"gpu": str(labels["gpu"])}
    return RSS, {"engine": row.name}


def memory_series(
    session: Session, row: EngineRow, start: float, end: float
) -> list[tuple[float, float]]:
    """The engine's memory from whichever collector stores it (host or agent source)."""
    metric, labels = _memory_query(row)
    sources = session.scalars(
        select(SeriesRow.source).where(SeriesRow.metric == metric).distinct()
    )
    points: list[tuple[float, float]] = []
    for source in sources:
        for series in samples.fetch_series(
            session, source=source, metric=metric, start=start, end=end, labels=labels
        ):
            points.extend(series.points)
    return sorted(points)


def config_changes(session: Session, engine_id: int, start: float) -> list[float]:
    """When the engine's config changed: each rollout's start and end since ``start``."""
    out: list[float] = []
    for created, finished in session.execute(
        select(RolloutRow.created, RolloutRow.finished_at).where(RolloutRow.engine_id == engine_id)
    ):
        for when in (created, finished):
            if when is not None and when.timestamp() >= start:
                out.append(when.timestamp())
    return out


def judge(
    session: Session, row: EngineRow, policy: DetectorSettings, now: float
) -> EngineVerdicts:
    qps_start = now - policy.qps_window_s
    leak_start = now - policy.leak_window_s
    counter = request_counter(session, row.name, min(qps_start, leak_start), now)
    qps = qps_swing(
        [p for p in counter if p[0] >= qps_start],
        threshold=policy.qps_cv_threshold,
        min_rps=policy.qps_min_rps,
        min_points=policy.qps_min_points,
    )
    memory = memory_series(session, row, leak_start, now)
    verdict = leak(
        memory,
        [p for p in counter if p[0] >= leak_start],
        changes=config_changes(session, row.id, leak_start),
        threshold=policy.leak_threshold,
        min_requests=policy.leak_min_requests,
        min_points=policy.leak_min_points,
        step_fraction=policy.leak_step_fraction,
    )
    return EngineVerdicts(row.name, qps, verdict)


def _fingerprint(detector: str, engine_id: int) -> str:
    return f"detector:{detector}:{engine_id}"


def _set(
    session: Session,
    row: EngineRow,
    *,
    detector: str,
    alertname: str,
    fire: bool | None,
    summary: str,
    now: datetime,
) -> str | None:
    """Raise (``fire`` True), resolve (False) or leave (None) one detector alert; returns
    ``firing`` / ``resolved`` when the alert changed state."""
    fingerprint = _fingerprint(detector, row.id)
    if fire:
        raised = alerts.raise_alert(
            session,
            alerts.RaisedAlert(
                fingerprint=fingerprint,
                alertname=alertname,
                source=AlertSource.detector,
                engine_id=row.id,
                labels={"alertname": alertname, "engine": row.name, "severity": "warning"},
                annotations={"summary": summary},
            ),
            actor=ACTOR,
            now=now,
        )
        return "firing" if raised else None
    if fire is False:
        existing = alerts.get_by_fingerprint(session, fingerprint)
        if existing is not None and alerts.resolve_alert(
            session, existing, actor=ACTOR, now=now, reason=summary
        ):
            return "resolved"
    return None


def apply(
    session: Session,
    row: EngineRow,
    verdicts: EngineVerdicts,
    policy: DetectorSettings,
    now: datetime,
) -> list[str]:
    """Raise or resolve the engine's detector alerts; the changes made, for the log."""
    changes = []
    qps = verdicts.qps
    if qps.cv is None or qps.mean_rps < policy.qps_min_rps:
        qps_fire: bool | None = False if qps.mean_rps < policy.qps_min_rps else None
        qps_summary = f"traffic {qps.mean_rps:.2f} req/s, below the floor or too few points"
    else:
        qps_fire = qps.swinging
        qps_summary = (
            f"request rate varies by {qps.cv:.0%} of its mean ({qps.mean_rps:.1f} req/s) over "
            f"{policy.qps_window_s:g} s (threshold {policy.qps_cv_threshold:.0%})"
        )
    moved = _set(
        session,
        row,
        detector="qps_swing",
        alertname="EngineQPSSwing",
        fire=qps_fire,
        summary=qps_summary,
        now=now,
    )
    if moved:
        changes.append(f"EngineQPSSwing {moved}")
    lv = verdicts.leak
    leak_fire: bool | None = None
    leak_summary = ""
    if lv.growth is not None:
        leak_summary = (
            f"memory grows {lv.growth:.1%} of its level per 100k requests over the last "
            f"{lv.requests:.0f} requests (threshold {policy.leak_threshold:.0%})"
        )
        if lv.leaking:
            leak_fire = True
        elif lv.growth < policy.leak_threshold / 2:
            leak_fire = False
    moved = _set(
        session,
        row,
        detector="memory_leak",
        alertname="EngineMemoryLeak",
        fire=leak_fire,
        summary=leak_summary,
        now=now,
    )
    if moved:
        changes.append(f"EngineMemoryLeak {moved}")
    return changes


class DetectorSource:
    """The detectors as a scheduler job source (leader scope)."""

    name = "detectors"
    scope = JobScope.leader

    def __init__(self, settings: Settings) -> None:
        self._policy = settings.detectors

    def version(self, session: Session) -> Hashable:
        return (self._policy.enabled, self._policy.interval_s)

    def load(self, session: Session) -> list[ScheduledJob]:
        if not self._policy.enabled:
            return []
        interval = self._policy.interval_s
        return [
            ScheduledJob(
                id="detectors",
                trigger=interval_trigger(interval),
                run=self.run,
                signature=interval,
            )
        ]

    def run(self, firing: Firing) -> Outcome:
        now = firing.now()
        changed: dict[str, list[str]] = {}
        with firing.sessions() as session:
            with session.begin():
                names = [(r.id, r.name) for r in engines.list_engines(session)]
            for engine_id, name in names:
                with session.begin():
                    if firing.fence is not None:
                        jobs.check_fence(session, firing.fence)
                    row = session.get(EngineRow, engine_id)
                    if row is None:
                        continue
                    verdicts = judge(session, row, self._policy, now.timestamp())
                    moves = apply(session, row, verdicts, self._policy, now)
                if moves:
                    changed[name] = moves
                    log.info("engine %s: %s", name, ", ".join(moves))
            with session.begin():
                if firing.fence is not None:
                    jobs.check_fence(session, firing.fence)
                expired = expire_guard_alerts(
                    session, older_than_s=self._policy.guard_alert_resolve_after_s, now=now
                )
        if expired:
            log.info(
                "%d guard alert(s) resolved after %g s",
                expired,
                self._policy.guard_alert_resolve_after_s,
            )
        return Outcome("idle", detail={"changed": changed, "guard_expired": expired})
