"""``cplane prometheus config`` and ``cplane alertmanager config``: accepted by the real
``promtool check config`` and ``amtool check-config``, with tokens only in token files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.fixtures.cli import Run
from tests.fixtures.prom import run_tool

SECRET = "cpt_not-a-real-token-0123456789"


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Run:
    monkeypatch.delenv("CP_DATABASE_URL", raising=False)
    monkeypatch.delenv("CP_PROMETHEUS__RULES_FILE", raising=False)
    monkeypatch.setenv("CP_DATA_DIR", str(tmp_path / "data"))
    return Run(capsys)


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(SECRET)
    path.chmod(0o600)
    return path


def test_prometheus_config_passes_promtool(cli: Run, tmp_path: Path, token_file: Path) -> None:
    rules = tmp_path / "slo.rules.yml"
    rules.write_text("groups: []\n")
    code, text, _ = cli(
        "prometheus", "config", "--url", "http://127.0.0.1:8400", "--token-file",
        str(token_file), "--rules-file", str(rules), "--scrape-interval", "5s",
    )  # fmt: skip
    assert code == 0
    config = tmp_path / "prometheus.yml"
    config.write_text(text)
    done = run_tool("promtool", "check", "config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "7 rule files found" in done.stdout  # six shipped files and the SLO rules
    assert SECRET not in text
    doc = yaml.safe_load(text)
    assert doc["global"] == {
        "scrape_interval": "5s",
        "scrape_timeout": "5s",
        "evaluation_interval": "15s",
    }
    jobs = {j["job_name"]: j for j in doc["scrape_configs"]}
    assert jobs["cplane"]["static_configs"] == [{"targets": ["127.0.0.1:8400"]}]
    sd = jobs["cplane-engines"]["http_sd_configs"][0]
    assert sd["url"] == "http://127.0.0.1:8400/api/v1/prometheus/targets"
    assert sd["authorization"] == {"type": "Bearer", "credentials_file": str(token_file)}
    assert doc["alerting"]["alertmanagers"][0]["static_configs"] == [
        {"targets": ["127.0.0.1:9093"]}
    ]


def test_alertmanager_config_passes_amtool(cli: Run, tmp_path: Path, token_file: Path) -> None:
    code, text, _ = cli(
        "alertmanager", "config", "--url", "http://cp.internal:8400", "--token-file",
        str(token_file),
    )  # fmt: skip
    assert code == 0
    config = tmp_path / "alertmanager.yml"
    config.write_text(text)
    done = run_tool("amtool", "check-config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    assert SECRET not in text
    doc = yaml.safe_load(text)
    assert doc["route"]["group_by"] == ["alertname", "engine"]
    hook = doc["receivers"][0]["webhook_configs"][0]
    assert hook["url"] == "http://cp.internal:8400/api/v1/alerts/alertmanager"
    assert hook["send_resolved"] is True
    assert hook["http_config"]["authorization"]["credentials_file"] == str(token_file)


@pytest.mark.parametrize(
    "args",
    [
        ("prometheus", "config", "--scrape-interval", "5x"),
        ("prometheus", "config", "--url", "ftp://x"),
        ("prometheus", "config", "--alerts-dir", "/nonexistent"),
        ("alertmanager", "config", "--group-wait", "soon"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(cli: Run, args: tuple[str, ...]) -> None:
    code, out, err = cli(*args)
    assert code == 2 and out == ""
    assert err.startswith("cplane: error:") and err.count("\n") == 1
