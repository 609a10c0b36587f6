"""The SLO rule file: generated from the store, checked, written, Prometheus reloaded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from controlplane.domain import SLO
from controlplane.prometheus.files import reload
from controlplane.prometheus.files import write_checked
from controlplane.prometheus.slo_rules import check_expressible
from controlplane.prometheus.slo_rules import slo_rules_text
from controlplane.prometheus.sources import slo_target
from controlplane.prometheus.sources import slo_targets
from controlplane.settings import Settings
from controlplane.store.models import EngineRow


@dataclass(frozen=True)
class RulesWritten:
    path: Path
    changed: bool
    reloaded: bool


def current_rules(session: Session) -> str:
    """Raises ValidationError when a stored SLO cannot be expressed."""
    return slo_rules_text(slo_targets(session))


def check_slo(session: Session, engine: EngineRow, slo: SLO) -> None:
    """Refuse, before it is stored, an SLO the rule generator cannot express."""
    check_expressible(slo_target(session, engine, slo))


def write_rules(session: Session, settings: Settings, path: Path | None = None) -> RulesWritten:
    """Write the rule file (if it changed, and only once promtool accepts it), then reload
    Prometheus when its URL is configured: also when the file is unchanged, so that running
    the command again repairs a reload that failed before.

    Raises:
        ValidationError: an SLO cannot be expressed, or promtool rejected the file.
        PrometheusError: promtool missing, or the reload failed (the file is written).
    """
    target = path or settings.prometheus_rules_file
    changed = write_checked(current_rules(session), target, promtool=settings.prometheus.promtool)
    reloaded = False
    if settings.prometheus.url:
        reload(settings.prometheus.url, timeout_s=settings.prometheus.reload_timeout_s)
        reloaded = True
    return RulesWritten(target, changed, reloaded)
