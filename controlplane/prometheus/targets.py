"""Prometheus HTTP service discovery: the engines the store knows, and the control plane.

Each target group pins its ``job`` (``cplane-engines`` or ``cplane``), so the shipped rules
select the same series whatever ``job_name`` the Prometheus configuration gives the
discovery job. Engine labels pass through except the names Prometheus or the rules give a
meaning to (``__*``, ``job``, ``instance``, ``engine``, ``kind``): a label must not move a
target's address or path, nor pretend to be another engine. ``__meta_cplane_role`` says
what a target is, for relabelling (the generated configuration scrapes the control plane
in a job of its own and keeps only engines from discovery).

Collector agents are not listed: they push to the control plane and serve no ``/metrics``
of their own, and the store keeps no address for them.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl
from urllib.parse import urlsplit

ENGINES_JOB = "cplane-engines"
CONTROL_PLANE_JOB = "cplane"
ROLE_LABEL = "__meta_cplane_role"
RESERVED = frozenset({"job", "instance", "engine", "kind"})


@dataclass(frozen=True)
class TargetGroup:
    """One entry of the discovery list: ``{"targets": [...], "labels": {...}}``."""

    targets: tuple[str, ...]
    labels: Mapping[str, str]

    def as_json(self) -> dict[str, object]:
        return {"targets": list(self.targets), "labels": dict(self.labels)}


@dataclass(frozen=True)
class EngineEntry:
    name: str
    kind: str
    metrics_url: str
    labels: Mapping[str, str]


def _split(url: str) -> tuple[str, dict[str, str]]:
    """``host:port`` and the labels that carry scheme, path and query parameters."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    labels = {"__scheme__": parts.scheme or "http", "__metrics_path__": parts.path or "/metrics"}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        labels[f"__param_{key}"] = value
    return f"{host}:{port}", labels


def engine_group(engine: EngineEntry) -> TargetGroup:
    address, labels = _split(engine.metrics_url)
    own = {k: v for k, v in engine.labels.items() if not k.startswith("__") and k not in RESERVED}
    return TargetGroup(
        (address,),
        {
            **own,
            **labels,
            "job": ENGINES_JOB,
            "engine": engine.name,
            "kind": engine.kind,
            ROLE_LABEL: "engine",
        },
    )


def control_plane_group(base_url: str) -> TargetGroup:
    address, labels = _split(base_url.rstrip("/") + "/metrics")
    return TargetGroup(
        (address,), {**labels, "job": CONTROL_PLANE_JOB, ROLE_LABEL: "controlplane"}
    )


def discovery(engines: Iterable[EngineEntry], control_plane_url: str) -> list[TargetGroup]:
    """The whole list, the control plane first and engines by name."""
    groups = [control_plane_group(control_plane_url)]
    groups.extend(engine_group(e) for e in sorted(engines, key=lambda e: e.name))
    return groups
