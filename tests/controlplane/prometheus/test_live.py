"""A real Prometheus pointed at a real control plane (``cplane up``) with a registered
reference engine: it discovers both over HTTP service discovery with the generated
configuration, scrapes them with the right labels, loads the shipped and generated rules,
and reloads when ``cplane prometheus rules`` rewrites the SLO rules."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.cli import ControlPlane
from tests.fixtures.cli import run_cplane
from tests.fixtures.engines import RunningEngine
from tests.fixtures.engines import free_port
from tests.fixtures.prom import Prometheus
from tests.fixtures.prom import require_tool


def _until(check: Callable[[], Any], what: str, timeout_s: float = 45.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


@pytest.mark.slow
def test_prometheus_discovers_scrapes_and_reloads(
    tmp_path: Path, reference_engine: RunningEngine
) -> None:
    require_tool("prometheus")
    require_tool("promtool")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CP_")},
        "CP_DATA_DIR": str(tmp_path / "cp"),
    }
    run_cplane(env, "db", "upgrade")
    run_cplane(env, "user", "create", "prometheus", "--role", "viewer")
    token = tmp_path / "token"
    token.write_text(run_cplane(env, "token", "create", "prometheus"))
    token.chmod(0o600)
    run_cplane(
        env, "engine", "add", "ref", "--url", reference_engine.url, "--label", "team=search"
    )
    run_cplane(env, "slo", "set", "ref", "error_rate<=1%")
    rules = tmp_path / "slo.rules.yml"
    run_cplane(env, "prometheus", "rules", "--out", str(rules))

    cp = ControlPlane(env, free_port())
    cp.start()
    prom: Prometheus | None = None
    try:
        config = tmp_path / "prometheus.yml"
        config.write_text(
            run_cplane(
                env,
                "prometheus",
                "config",
                "--url",
                cp.url,
                "--token-file",
                str(token),
                "--rules-file",
                str(rules),
                "--scrape-interval",
                "1s",
                "--evaluation-interval",
                "1s",
                "--sd-refresh-interval",
                "1s",
            )  # fmt: skip
            + "\n"
        )
        prom = Prometheus(config, tmp_path)
        prom.start()

        def targets_up() -> list[dict[str, Any]] | None:
            data = prom.get("/api/v1/targets", state="active")  # type: ignore[union-attr]
            active = data["activeTargets"]  # type: ignore[index]
            if len(active) == 2 and all(t["health"] == "up" for t in active):
                return sorted(active, key=lambda t: t["labels"]["job"])
            return None

        cplane, engine = _until(targets_up, "both targets up")
        assert cplane["labels"] == {"job": "cplane", "instance": f"127.0.0.1:{cp.port}"}
        engine_port = reference_engine.url.rsplit(":", 1)[1]
        assert engine["labels"] == {
            "job": "cplane-engines",
            "instance": f"127.0.0.1:{engine_port}",
            "engine": "ref",
            "kind": "reference",
            "team": "search",
        }
        assert engine["scrapeUrl"] == f"{reference_engine.url}/metrics"

        def groups() -> set[str]:
            data = prom.get("/api/v1/rules")  # type: ignore[union-attr]
            return {g["name"] for g in data["groups"]}  # type: ignore[index]

        loaded = groups()
        expected = {"cplane-canonical-requests", "cplane-serving", "cplane-slo-ref-error_rate"}
        assert expected <= loaded
        # Canonical series from the engine's own names, labelled by discovery.
        series = _until(
            lambda: prom.get(  # type: ignore[union-attr]
                "/api/v1/query", query='cplane:engine_requests_waiting:sum{engine="ref"}'
            )["result"],  # type: ignore[index]
            "a canonical recording",
        )
        assert series[0]["metric"] == {
            "__name__": "cplane:engine_requests_waiting:sum",
            "engine": "ref",
            "kind": "reference",
        }

        # A new SLO: the rule file is rewritten and Prometheus reloads it.
        run_cplane(env, "slo", "set", "ref", "p99_ms<=500")
        out = run_cplane(
            {**env, "CP_PROMETHEUS__URL": prom.url}, "prometheus", "rules", "--out", str(rules)
        )
        assert out.endswith("written, Prometheus reloaded")
        assert "cplane-slo-ref-p99" in groups()
    finally:
        if prom is not None:
            prom.stop()
        cp.stop()
