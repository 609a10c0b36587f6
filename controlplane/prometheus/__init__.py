"""Prometheus integration: service discovery of the fleet, the configuration files of
Prometheus and Alertmanager, the canonical recording rules and the SLO burn-rate rules."""

from controlplane.prometheus.configs import AlertmanagerConfig
from controlplane.prometheus.configs import PrometheusConfig
from controlplane.prometheus.files import PrometheusError
from controlplane.prometheus.service import RulesWritten
from controlplane.prometheus.service import check_slo
from controlplane.prometheus.service import current_rules
from controlplane.prometheus.service import write_rules
from controlplane.prometheus.sources import engine_entries
from controlplane.prometheus.targets import TargetGroup
from controlplane.prometheus.targets import discovery

__all__ = [
    "AlertmanagerConfig",
    "PrometheusConfig",
    "PrometheusError",
    "RulesWritten",
    "TargetGroup",
    "check_slo",
    "current_rules",
    "discovery",
    "engine_entries",
    "write_rules",
]
