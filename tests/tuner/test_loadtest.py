"""Load tests on a real reference engine: a small concurrency sweep draws the decay curve
(p99 climbing, throughput flattening on an engine that batches nothing), stores its steps,
finds knee and saturation and writes the report with plotly.js once; a step far past the
SLO ends the sweep; the CLI's regression gate exits 1 naming the step; bad input is exit 2
/ 422 with the field named and nothing recorded. SQLite only: the engine is the cost."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy import update

from controlplane.api.app import create_app
from controlplane.domain import Role
from controlplane.schemas.loadtest import LoadTestCreate
from controlplane.settings import LoadTestSettings
from controlplane.settings import Settings
from controlplane.store import loadtests
from controlplane.store.database import SessionFactory
from controlplane.store.database import secret_box
from controlplane.store.database import unit_of_work
from controlplane.store.models import LoadTestStepRow
from tests.fixtures.api import TokenMaker
from tests.fixtures.cli import Run
from tests.fixtures.db import SQLITE_ONLY
from tests.fixtures.engines import RunningEngine
from tests.tuner.conftest import FAST_TUNER
from tests.tuner.conftest import register
from tuner import storage_url
from tuner.loadtest import LoadTester
from tuner.loadtest import start_load_test

pytestmark = SQLITE_ONLY


def _settings(db_engine: Engine, tmp_path: Path, **loadtest: float) -> Settings:
    return Settings(
        database_url=storage_url(db_engine),
        data_dir=tmp_path,
        tuner=FAST_TUNER,
        loadtest=LoadTestSettings(**loadtest),  # type: ignore[arg-type]
    )


def _start(sessions: SessionFactory, settings: Settings, **body: object) -> int:
    with unit_of_work(sessions) as s:
        row = start_load_test(
            s,
            engine_ref="ref",
            request=LoadTestCreate.model_validate(body),
            policy=settings.loadtest,
            actor="t",
        )
        return row.id


@pytest.mark.slow
def test_a_sweep_draws_the_decay_curve_with_knee_and_saturation(
    sessions: SessionFactory, db_engine: Engine, tmp_path: Path, serial_engine: RunningEngine
) -> None:
    register(sessions, serial_engine.url, serial_engine.admin_token, "p99_s<=5")
    settings = _settings(db_engine, tmp_path, saturation_gain=0.5)
    load_test_id = _start(sessions, settings, concurrency="1,4,16")
    seen: list[float] = []
    tester = LoadTester(
        session_factory=sessions, settings=settings, on_step=lambda s: seen.append(s.offered)
    )
    outcome = tester.run(load_test_id)
    assert outcome.state == "done" and seen == [1, 4, 16]
    one, four, sixteen = outcome.steps
    assert all(s.requests > 0 and s.errors == 0 for s in outcome.steps)
    # One request at a time: past a few users the engine is busy all the time, so sixteen
    # users mostly queue behind each other: p99 climbs far faster than throughput.
    # (One spike in the few requests of the four-user step can double its p99 on a busy
    # machine: the ratio of the two growths is what the queueing shows every time.)
    assert sixteen.p99_ms is not None and four.p99_ms is not None
    growth = (sixteen.p99_ms / four.p99_ms, sixteen.throughput_rps / four.throughput_rps)
    assert growth[0] > growth[1], growth
    assert one.ttft_p50_ms is not None and one.output_tokens_per_s > one.throughput_rps
    assert outcome.knee == max(outcome.steps, key=lambda s: s.throughput_rps)
    assert outcome.saturation is not None and outcome.saturation.offered < 16
    with unit_of_work(sessions) as s:
        row = loadtests.get(s, load_test_id)
        stored = [st.offered for st in loadtests.steps(s, load_test_id)]
        assert row.state == "done" and row.result is not None
        assert row.result["knee"]["offered"] == outcome.knee.offered
        assert row.result["config"]["max_batch_size"] == 1
    assert stored == [1, 4, 16]
    assert outcome.report is not None
    page = Path(outcome.report).read_text()
    assert page.count("plotly.js v") == 1 and "Capacity within the SLO" in page


@pytest.mark.slow
def test_a_step_far_past_the_slo_ends_the_sweep(
    sessions: SessionFactory, db_engine: Engine, tmp_path: Path, serial_engine: RunningEngine
) -> None:
    register(sessions, serial_engine.url, serial_engine.admin_token, "p99_ms<=1")
    settings = _settings(db_engine, tmp_path, stop_p99_factor=2)
    load_test_id = _start(sessions, settings, concurrency="4,8,16")
    outcome = LoadTester(session_factory=sessions, settings=settings).run(load_test_id)
    assert outcome.state == "done" and [s.offered for s in outcome.steps] == [4]
    assert outcome.knee is None
    assert outcome.stopped_by is not None and "past 2x the SLO" in outcome.stopped_by


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    db_engine: Engine,
    tmp_path: Path,
) -> Run:
    monkeypatch.setenv("CP_DATABASE_URL", storage_url(db_engine))
    monkeypatch.setenv("CP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CP_SECRET_KEY_FILE", str(secret_box(db_engine).key_file))
    for name, value in FAST_TUNER.model_dump().items():
        if value is not None and not isinstance(value, str):
            monkeypatch.setenv(f"CP_TUNER__{name.upper()}", str(value))
    monkeypatch.setenv("CP_LOADTEST__MAX_CONCURRENCY", "64")
    return Run(capsys)


@pytest.mark.slow
def test_the_cli_gate_exits_1_naming_the_step_that_regressed(
    cli: Run, sessions: SessionFactory, serial_engine: RunningEngine, tmp_path: Path
) -> None:
    register(sessions, serial_engine.url, serial_engine.admin_token, "p99_s<=5")
    png = tmp_path / "curve.png"
    code, out, err = cli("loadtest", "ref", "--concurrency", "4", "--json", "--png", str(png))
    assert code == 0, err
    first = json.loads(out)
    assert first["state"] == "done" and [s["offered"] for s in first["steps"]] == [4]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The stored baseline claims a p99 this engine cannot reach at 4 users: a regression.
    with unit_of_work(sessions) as s:
        s.execute(
            update(LoadTestStepRow)
            .where(LoadTestStepRow.load_test_id == first["id"], LoadTestStepRow.offered == 4)
            .values(p99_ms=0.5, p99_noise=0.0)
        )
    code, out, _err = cli("loadtest", "ref", "--baseline", str(first["id"]))
    assert code == 1
    assert "REGRESSED: p99 at 4:" in out


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("--concurrency", "1,two"), "concurrency"),
        (("--concurrency", "1,128"), "concurrency"),
        (("--rate", "5:200:x0.5"), "rate"),
        (("--concurrency", "1", "--rate", "5"), "exactly one"),
        (("--concurrency", "1", "--shapes", "32by16"), "shapes"),
        (("--concurrency", "1", "--baseline", "999"), "load test 999 not found"),
    ],
)
def test_bad_input_is_exit_2_and_starts_nothing(
    cli: Run, sessions: SessionFactory, args: tuple[str, ...], field: str
) -> None:
    register(sessions, "http://127.0.0.1:9", None, "p99_ms<=300")
    code, _out, err = cli("loadtest", "ref", *args)
    assert code == 2 and err.startswith("cplane: error:") and err.count("\n") == 1
    assert field in err
    with unit_of_work(sessions) as s:
        assert loadtests.list_(s) == []


@pytest.mark.parametrize(
    ("text", "reason"), [("", "no prompts"), ("{oops\n", "line 1"), ('{"p": 1}\n', "line 1")]
)
def test_a_bad_prompt_file_is_exit_2(
    cli: Run, sessions: SessionFactory, tmp_path: Path, text: str, reason: str
) -> None:
    register(sessions, "http://127.0.0.1:9", None, "p99_ms<=300")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(text)
    code, _out, err = cli("loadtest", "ref", "--concurrency", "1", "--prompts", str(prompts))
    assert code == 2 and "prompt" in err and reason in err and err.count("\n") == 1
    with unit_of_work(sessions) as s:
        assert loadtests.list_(s) == []


def test_no_slo_is_refused(cli: Run, sessions: SessionFactory) -> None:
    register(sessions, "http://127.0.0.1:9", None)
    code, _out, err = cli("loadtest", "ref", "--concurrency", "1")
    assert code == 2 and "no SLO" in err


@pytest.fixture
def api(db_engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    settings = _settings(db_engine, tmp_path, max_rate=100)
    with TestClient(create_app(settings, db_engine=db_engine)) as c:
        yield c


@pytest.mark.slow
def test_the_api_starts_and_reads_a_load_test(
    api: TestClient, auth: TokenMaker, serial_engine: RunningEngine
) -> None:
    op, viewer = auth(Role.operator), auth(Role.viewer)
    body = {"name": "ref", "url": serial_engine.url, "admin_token": serial_engine.admin_token}
    assert api.post("/api/v1/engines", json=body, headers=op).status_code == 201
    api.put("/api/v1/engines/ref/slos", json={"spec": "p99_ms<=5000"}, headers=op)
    for bad, field in (
        ({"rate": "5:500:x2"}, "rate"),
        ({"concurrency": "a,b"}, "concurrency"),
        ({"rate": "5", "prompts": [{"prompt": ""}]}, "prompts"),
    ):
        refused = api.post("/api/v1/engines/ref/load-tests", json=bad, headers=op)
        assert refused.status_code == 422, refused.text
        assert field in refused.text
    assert api.post("/api/v1/engines/ref/load-tests", json={"rate": "5"}, headers=viewer
                    ).status_code == 403  # fmt: skip
    started = api.post("/api/v1/engines/ref/load-tests", json={"rate": "10"}, headers=op)
    assert started.status_code == 202, started.text
    load_test = started.json()
    assert load_test["state"] == "pending" and load_test["spec"]["steps"] == [10.0]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        current = api.get(f"/api/v1/load-tests/{load_test['id']}", headers=viewer).json()
        if current["state"] not in ("pending", "running"):
            break
        time.sleep(0.2)
    assert current["state"] == "done", current
    [only] = current["steps"]
    assert only["offered"] == 10 and only["throughput_rps"] > 0
    listed = api.get("/api/v1/load-tests?engine=ref", headers=viewer).json()
    assert [r["id"] for r in listed] == [load_test["id"]]
    assert api.post(f"/api/v1/load-tests/{load_test['id']}/stop", headers=op).status_code == 409
