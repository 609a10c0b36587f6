"""SLO burn-rate rules: generated for sample SLOs and run by the real ``promtool test rules``
(page, ticket and quiet), refused at ``slo set`` when they cannot be expressed, and never
written over a good rule file unless promtool accepts them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from controlplane.domain import Role
from controlplane.domain import Sample
from controlplane.domain import ValidationError
from controlplane.domain import parse_slo
from controlplane.prometheus import PrometheusError
from controlplane.prometheus.files import write_checked
from controlplane.prometheus.slo_rules import SloTarget
from controlplane.prometheus.slo_rules import check_expressible
from controlplane.prometheus.slo_rules import slo_rules_text
from controlplane.store import samples
from controlplane.store import slos
from controlplane.store.database import make_session_factory
from controlplane.store.database import unit_of_work
from tests.fixtures.api import TokenMaker
from tests.fixtures.cli import Run
from tests.fixtures.engines import free_port
from tests.fixtures.prom import require_tool
from tests.fixtures.prom import run_tool

LABELS = 'job="cplane-engines",instance="127.0.0.1:9001",kind="reference",model_name="tiny"'
ALERT = "EngineErrorBudgetBurn"
RATIO_1H = "cplane_slo:sli_error:ratio_rate1h"


def _requests(engine: str, per_min_ok: int, per_min_error: int, n: int) -> list[dict[str, str]]:
    series = f"vllm:request_success_total{{{LABELS},engine={engine!r}"
    return [
        {"series": series + ',finished_reason="stop"}', "values": f"0+{per_min_ok}x{n}"},
        {"series": series + ',finished_reason="error"}', "values": f"0+{per_min_error}x{n}"},
    ]


def _latency(engine: str, fast: int, slow: int, n: int) -> list[dict[str, str]]:
    series = f"vllm:e2e_request_latency_seconds_{{}}{{{{{LABELS},engine={engine!r}{{}}}}}}"
    return [
        {"series": series.format("bucket", ',le="0.3"'), "values": f"0+{fast}x{n}"},
        {"series": series.format("bucket", ',le="+Inf"'), "values": f"0+{fast + slow}x{n}"},
        {"series": series.format("count", ""), "values": f"0+{fast + slow}x{n}"},
    ]


def _firing(eval_time: str, expected: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "expr": f'ALERTS{{alertname="{ALERT}", alertstate="firing"}}',
        "eval_time": eval_time,
        "exp_samples": [
            {
                "labels": "ALERTS{"
                + ",".join(
                    f'{k}="{v}"'
                    for k, v in sorted(
                        {"alertname": ALERT, "alertstate": "firing", **labels}.items()
                    )
                )
                + "}",
                "value": 1,
            }
            for labels in expected
        ],
    }


def _alert(engine: str, slo: str, burn: str) -> dict[str, str]:
    severity = "critical" if burn == "page" else "warning"
    return {"engine": engine, "slo": slo, "burn": burn, "severity": severity}


def test_generated_rules_page_ticket_and_stay_quiet(tmp_path: Path) -> None:
    targets = [
        SloTarget(engine, "reference", parse_slo(spec))
        for engine in ("burning", "slow-burn", "healthy", "slow", "fast")
        for spec in ("error_rate<=1%", "p99_ms<=300")
    ]
    rules = tmp_path / "slo.rules.yml"
    rules.write_text(slo_rules_text(targets))
    checked = run_tool("promtool", "check", "rules", str(rules))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    n = 80
    series = (
        _requests("burning", 480, 120, n)  # 20 % errors: > 14.4 x 1 %
        + _requests("slow-burn", 576, 24, n)  # 4 %: > 3 x 1 % only
        + _requests("healthy", 597, 3, n)  # 0.5 %: inside the budget
        + _latency("slow", 300, 300, n)  # half the requests above 300 ms
        + _latency("fast", 600, 0, n)
    )
    test = {
        "rule_files": [rules.name],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    _firing("1m", []),
                    _firing(
                        "70m",
                        [
                            _alert("burning", "error_rate", "page"),
                            _alert("burning", "error_rate", "ticket"),
                            _alert("slow", "p99", "page"),
                            _alert("slow", "p99", "ticket"),
                            _alert("slow-burn", "error_rate", "ticket"),
                        ],
                    ),
                    {
                        "expr": RATIO_1H + '{engine="slow"}',
                        "eval_time": "70m",
                        "exp_samples": [
                            {
                                "labels": RATIO_1H + '{engine="slow",slo="p99"}',
                                "value": 0.5,
                            }
                        ],
                    },
                ],
            }
        ],
    }
    (tmp_path / "slo.test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    done = run_tool("promtool", "test", "rules", "slo.test.yml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("kind", "spec", "buckets", "message"),
    [
        ("tgi", "ttft_p95_ms<=500", None, "exposes no time to first token histogram"),
        ("triton", "p99_ms<=300", None, "exposes no request latency histogram"),
        ("reference", "p99_ms<=20000", (0.1, 0.5, 10.0, float("inf")), "beyond the largest"),
        ("reference", "p99_ms<=0.5", (0.001, 0.1, float("inf")), "below the smallest"),
    ],
)
def test_inexpressible_slos_are_refused(
    kind: str, spec: str, buckets: tuple[float, ...] | None, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        check_expressible(SloTarget("e", kind, parse_slo(spec), buckets))


def test_a_threshold_between_buckets_counts_at_the_bound_below() -> None:
    target = SloTarget("e", "reference", parse_slo("p99_ms<=300"), (0.1, 0.25, 0.5))
    assert 'le=~"0\\\\.250*"' in slo_rules_text([target])
    triton = SloTarget("t", "triton", parse_slo("ttft_p95_ms<=500"))
    assert 'nv_inference_first_response_histogram_ms_bucket{engine="t", le=~"500(\\\\.0+)?"}' in (
        slo_rules_text([triton])
    )


def _store_buckets(db_engine: Engine, engine: str, bounds: list[str]) -> None:
    with unit_of_work(make_session_factory(db_engine)) as session:
        samples.insert_samples(
            session,
            [
                Sample(1.0, engine, "request_latency_seconds_bucket", (("le", le),), 1.0)
                for le in bounds
            ],
        )


def test_api_refuses_an_slo_beyond_the_stored_buckets_and_serves_the_rules(
    client: TestClient, auth: TokenMaker, db_engine: Engine
) -> None:
    operator = auth(Role.operator)
    body = {"name": "ref", "kind": "reference", "url": "http://127.0.0.1:8001"}
    assert client.post("/api/v1/engines", json=body, headers=operator).status_code == 201
    _store_buckets(db_engine, "ref", ["0.1", "0.5", "1.0", "+Inf"])
    url = "/api/v1/engines/ref/slos"
    refused = client.put(url, json={"spec": "p99_ms<=5000"}, headers=operator)
    assert refused.status_code == 422
    assert "beyond the largest bucket" in refused.text
    assert client.get(url, headers=operator).json() == []
    assert client.put(url, json={"spec": "p99_ms<=500"}, headers=operator).status_code == 200
    rules = client.get("/api/v1/prometheus/rules", headers=auth(Role.viewer))
    assert rules.status_code == 200 and rules.headers["content-type"].startswith("text/yaml")
    groups = yaml.safe_load(rules.text)["groups"]
    assert [g["name"] for g in groups] == ["cplane-slo-ref-p99"]


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Run:
    monkeypatch.delenv("CP_DATABASE_URL", raising=False)
    for name in ("CP_PROMETHEUS__URL", "CP_PROMETHEUS__RULES_FILE", "CP_PROMETHEUS__PROMTOOL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CP_DATA_DIR", str(tmp_path / "data"))
    run = Run(capsys)
    assert run("db", "upgrade")[0] == 0
    return run


def test_cli_slo_set_refuses_what_the_rules_cannot_express(cli: Run) -> None:
    assert cli("engine", "add", "t", "--kind", "tgi", "--url", "http://127.0.0.1:1")[0] == 0
    code, _out, err = cli("slo", "set", "t", "ttft_p95_ms<=500")
    assert code == 2 and err.count("\n") == 1
    assert "no time to first token histogram" in err
    assert cli("slo", "set", "t", "p99_ms<=500")[0] == 0


def test_cli_writes_checked_rules_and_keeps_a_good_file(
    cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_tool("promtool")
    out = tmp_path / "rules" / "slo.rules.yml"
    assert cli("engine", "add", "ref", "--url", "http://127.0.0.1:1")[0] == 0
    assert cli("slo", "set", "ref", "error_rate<=1%")[0] == 0
    code, text, _ = cli("prometheus", "rules", "--out", str(out))
    assert code == 0 and "written" in text
    good = out.read_text()
    assert "cplane-slo-ref-error_rate" in good
    assert cli("prometheus", "rules", "--out", str(out))[1].strip().endswith("unchanged")

    # An SLO stored behind the generator's back (an older version, a direct write) that it
    # cannot express: the command fails, and the good file stays.
    from controlplane.settings import Settings
    from controlplane.store import engines
    from controlplane.store.database import make_engine

    engine = make_engine(Settings())
    with unit_of_work(make_session_factory(engine)) as session:
        row = engines.get_engine(session, "ref")
        row.kind = "triton"
        slos.set_slo(session, engine_id=row.id, slo=parse_slo("p99_ms<=300"), actor="test")
    engine.dispose()
    code, _, err = cli("prometheus", "rules", "--out", str(out))
    assert code == 2 and "no request latency histogram" in err
    assert out.read_text() == good

    assert cli("slo", "remove", "ref", "p99")[0] == 0
    # No Prometheus at the configured URL: the checked file is written, the command says
    # the reload failed (exit 2), and running it again retries the reload.
    monkeypatch.setenv("CP_PROMETHEUS__URL", f"http://127.0.0.1:{free_port()}")
    other = tmp_path / "rules" / "again.rules.yml"
    code, _, err = cli("prometheus", "rules", "--out", str(other))
    assert code == 2 and "unreachable" in err
    assert "nv_inference_request_failure" in other.read_text()  # written (now a triton)
    code, _, err = cli("prometheus", "rules", "--out", str(other))
    assert code == 2 and "unreachable" in err
    monkeypatch.delenv("CP_PROMETHEUS__URL")
    monkeypatch.setenv("CP_PROMETHEUS__PROMTOOL", str(tmp_path / "no-such-promtool"))
    code, _, err = cli("prometheus", "rules", "--out", str(tmp_path / "other.yml"))
    assert code == 2 and "not found" in err
    assert not (tmp_path / "other.yml").exists()


def test_a_file_promtool_rejects_never_replaces_a_good_one(tmp_path: Path) -> None:
    require_tool("promtool")
    path = tmp_path / "slo.rules.yml"
    good = slo_rules_text([SloTarget("ref", "reference", parse_slo("error_rate<=1%"))])
    assert write_checked(good, path)
    broken = good.replace("sum (", "sum ((", 1)
    with pytest.raises(ValidationError, match="promtool rejected"):
        write_checked(broken, path)
    assert path.read_text() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slo.rules.yml"]
    with pytest.raises(PrometheusError, match="not found"):
        write_checked(good + "\n", path, promtool=str(tmp_path / "missing"))
    assert path.read_text() == good
