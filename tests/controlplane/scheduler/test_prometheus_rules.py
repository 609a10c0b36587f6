"""The SLO rule-file job on the real store with the real promtool: an SLO set or removed
rewrites the file and reloads Prometheus; an unchanged store neither writes nor reloads; a
refused reload is retried. Prometheus's ``/-/reload`` is played by a local HTTP server that
answers as Prometheus does (200 with an empty body, or 500 with the error text)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import Engine

from controlplane.domain import parse_slo
from controlplane.scheduler import Firing
from controlplane.scheduler.prometheus_rules import JOB
from controlplane.scheduler.prometheus_rules import PrometheusRulesSource
from controlplane.scheduler.prometheus_rules import wanted
from controlplane.schemas.engines import EngineCreate
from controlplane.settings import PrometheusSettings
from controlplane.settings import Settings
from controlplane.store import engines
from controlplane.store import slos
from controlplane.store.database import make_session_factory
from tests.fixtures.prom import require_tool


class StandIn:
    """Counts ``POST /-/reload``; ``fail`` makes it answer 500 like a failed reload."""

    def __init__(self) -> None:
        self.reloads = 0
        self.fail = False
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                ok = self.path == "/-/reload" and not owner.fail
                if ok:
                    owner.reloads += 1
                body = b"" if ok else b"failed to reload config\n"
                self.send_response(200 if ok else 500)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    server = StandIn()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_only_with_a_prometheus_configured(tmp_path: Path) -> None:
    assert not wanted(Settings(data_dir=tmp_path))
    assert wanted(Settings(data_dir=tmp_path, prometheus=PrometheusSettings(url="http://x:1")))


def test_slo_changes_rewrite_the_file_and_reload(
    db_engine: Engine, tmp_path: Path, stand_in: StandIn
) -> None:
    require_tool("promtool")
    rules = tmp_path / "slo.rules.yml"
    settings = Settings(
        data_dir=tmp_path, prometheus=PrometheusSettings(url=stand_in.url, rules_file=rules)
    )
    sessions = make_session_factory(db_engine)
    source = PrometheusRulesSource(settings)
    (job,) = source.load(None)  # type: ignore[arg-type]
    assert job.id == JOB

    def fire() -> dict[str, object]:
        now = datetime.now(UTC)
        return job.run(Firing(JOB, now, None, sessions, lambda: now)).detail

    with sessions() as session, session.begin():
        row = engines.add_engine(
            session, data=EngineCreate(name="rules-job", url="http://127.0.0.1:9"), actor="t"
        )
        engine_id = row.id
        slos.set_slo(session, engine_id=engine_id, slo=parse_slo("error_rate<=1%"), actor="t")
    assert fire() == {"changed": True, "reloaded": True}
    assert "cplane-slo-rules-job-error_rate" in rules.read_text()
    assert stand_in.reloads == 1

    assert fire() == {"changed": False, "reloaded": False}
    assert stand_in.reloads == 1

    # Set straight on the store (as `cplane slo set` does), and the reload refused once.
    with sessions() as session, session.begin():
        slos.set_slo(session, engine_id=engine_id, slo=parse_slo("p99_ms<=500"), actor="t")
    stand_in.fail = True
    outcome = job.run(Firing(JOB, datetime.now(UTC), None, sessions, lambda: datetime.now(UTC)))
    assert outcome.state == "failed"
    assert outcome.error is not None and "refused the reload" in outcome.error
    assert "cplane-slo-rules-job-p99" in rules.read_text()
    stand_in.fail = False
    assert fire() == {"changed": False, "reloaded": True}
    assert stand_in.reloads == 2

    with sessions() as session, session.begin():
        slos.remove_slo(session, engine_id=engine_id, name="p99", actor="t")
        slos.remove_slo(session, engine_id=engine_id, name="error_rate", actor="t")
    assert fire() == {"changed": True, "reloaded": True}
    assert "rules-job" not in rules.read_text()
    assert stand_in.reloads == 3
