"""The rule files in alerts/: valid for the real promtool, unit-tested by it (every alert
seen firing and seen quiet), written in house style, and querying only series that exist."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from fastapi.testclient import TestClient

from controlplane.prometheus.canonical import canonical_text
from controlplane.prometheus.canonical import kind_groups
from controlplane.prometheus.promql import exposed_name
from controlplane.prometheus.slo_rules import ALERT as SLO_ALERT
from tests.fixtures.prom import run_tool

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "alerts"
RULE_FILES = sorted(ALERTS.glob("*.rules.yml"))
TEST_FILES = sorted((ALERTS / "tests").glob("*.test.yml"))
HISTOGRAM_PARTS = ("_bucket", "_count", "_sum")
SEVERITIES = {"critical", "warning", "info", "none"}
# Exported by the scheduler's leader election, which runs beside (not inside) this tree's
# API process; its own tests check the export.
EXPORTED_ELSEWHERE = {"cplane_scheduler_is_leader"}


def _rules() -> list[dict[str, Any]]:
    rules = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules.extend(group["rules"])
    return rules


def _alerts() -> list[dict[str, Any]]:
    return [r for r in _rules() if "alert" in r]


def test_rule_files_pass_promtool_check() -> None:
    assert len(RULE_FILES) >= 6
    done = run_tool("promtool", "check", "rules", *map(str, RULE_FILES))
    assert done.returncode == 0, done.stdout + done.stderr


def test_rule_unit_tests_pass_promtool_test() -> None:
    done = run_tool(
        "promtool", "test", "rules", *[p.name for p in TEST_FILES], cwd=ALERTS / "tests"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("SUCCESS") == len(TEST_FILES)


def test_canonical_rules_are_generated_from_the_metric_maps() -> None:
    assert (ALERTS / "canonical.rules.yml").read_text() == canonical_text(), (
        "stale: run `python -m controlplane.prometheus > alerts/canonical.rules.yml`"
    )


def test_every_alert_is_in_house_style_with_a_runbook() -> None:
    names = [a["alert"] for a in _alerts()]
    assert len(names) == len(set(names)), "alert names must be unique"
    for alert in _alerts():
        name = alert["alert"]
        assert alert["labels"]["severity"] in SEVERITIES, name
        notes = alert["annotations"]
        assert notes["summary"] and "\n" not in notes["summary"], name
        if alert["labels"]["severity"] != "none":  # the Watchdog says the same thing always
            assert "{{" in notes["description"], f"{name}: description without values"
        assert notes["runbook_url"] == f"docs/runbooks/{name}.md", name
        assert (ROOT / notes["runbook_url"]).is_file(), f"{name}: no runbook"
    assert (ROOT / f"docs/runbooks/{SLO_ALERT}.md").is_file()


def test_every_alert_is_tested_firing_and_quiet() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    quiet.add("Watchdog")  # vector(1): it has no quiet state by design
    names = {a["alert"] for a in _alerts()}
    assert names - firing == set(), "never shown firing"
    assert names - quiet == set(), "never shown quiet"


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^}]*\}")
_CLAUSES = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAMES = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_KEYWORDS = {"and", "or", "unless", "offset", "bool"}


def _metric_names(expr: str) -> set[str]:
    text = _CLAUSES.sub(" ", _MATCHERS.sub(" ", _STRINGS.sub('""', expr)))
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b\d[\d.e+]*[smhdwy]*\b", " ", text)  # numbers and durations
    names = set()
    for m in _NAMES.finditer(text):
        rest = text[m.end() :].lstrip()
        if m.group() in _KEYWORDS or rest.startswith("("):
            continue  # an operator or a function call
        names.add(m.group())
    return names


def _map_names() -> set[str]:
    """Every name the collectors' metric maps accept (old and new spellings of a moved
    metric; each map is tested against the captured expositions by the parser's tests)."""
    names = set()
    for group in kind_groups():
        for sources in group.metric_map.values():
            for src in sources:
                if src.type == "histogram":
                    names |= {exposed_name(group.kinds[0], src, p) for p in HISTOGRAM_PARTS}
                else:
                    names.add(exposed_name(group.kinds[0], src))
    return names


def _fixture_names() -> set[str]:
    names = set()
    for path in (ROOT / "tests/fixtures/collectors").glob("*/metrics.txt"):
        for line in path.read_text().splitlines():
            if line and not line.startswith("#"):
                names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_rules_query_only_series_that_exist(client: TestClient) -> None:
    """Names come from the captured engine expositions, the control plane's own /metrics
    (families declared there, with the GPU and host ones from the export's help table),
    or the rules' own recordings: a renamed metric fails here, not silently in production."""
    from collectors._export import HELP

    text = client.get("/metrics").text
    exported = set(HELP) | {"up"}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _hash, _type, name, kind = line.split()
            exported |= {name, f"{name}_total"} if kind == "counter" else {name}
            if kind == "histogram":
                exported |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
    recorded = {r["record"] for r in _rules() if "record" in r}
    known = _fixture_names() | _map_names() | exported | recorded | EXPORTED_ELSEWHERE
    used = set().union(*(_metric_names(r["expr"]) for r in _rules()))
    assert {"up", "gpu_temperature_celsius", "vllm:request_success_total"} <= used
    assert used - known == set()
    assert {
        "cplane_tuning_runs",
        "cplane_chaos_fault_overdue_seconds",
        "cplane_rollouts_total",
    } <= exported
