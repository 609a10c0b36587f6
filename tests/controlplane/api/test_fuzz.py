"""Property-based fuzzing of the control plane's own OpenAPI schema, on SQLite and on
PostgreSQL, with an admin token: no request may get a 5xx, and no response may break the
schema the app publishes for it.

Engines the fuzzer registers get arbitrary URLs; every adapter is pointed at one real
reference engine on loopback instead, so a generated rollout is applied (or refused) by a
real engine and no request leaves this machine. Operations that would act on the host or
start load are left out: chaos experiments (signals, qdiscs), tuning runs (load
generation) and the quality probe (32 prompts per call), whose inputs have their own tests.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from controlplane.api.app import create_app
from controlplane.domain import EngineTarget
from controlplane.domain import Role
from controlplane.engines import EngineAdapter
from controlplane.engines import adapter_for
from controlplane.settings import Settings
from engine.config import EngineConfig
from tests.engine.serving import RunningServer
from tests.engine.serving import serve_engine
from tests.fixtures.api import TokenMaker
from tests.fixtures.asgi import serve_asgi
from tests.fuzzing import fuzz

# One backend: the slowest test of the API, and PostgreSQL is the stricter of the two (integer
# widths, NUL bytes); the store suite runs both.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize(
        "backend", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
    ),
]

SKIP = {
    ("POST", "/api/v1/chaos/experiments"),
    ("POST", "/api/v1/engines/{engine}/tuning-runs"),
    ("POST", "/api/v1/tuning-runs/{run_id}/resume"),
    ("PUT", "/api/v1/engines/{engine}/quality/reference"),
    ("POST", "/api/v1/engines/{engine}/quality/check"),
}


@pytest.fixture(scope="module")
def reference_engine() -> Iterator[RunningServer]:
    with serve_engine(EngineConfig(max_batch_size=4)) as running:
        yield running


def test_fuzzed_requests_get_no_5xx_and_match_the_schema(
    app_settings: Settings,
    db_engine: Engine,
    auth: TokenMaker,
    reference_engine: RunningServer,
) -> None:
    app = create_app(app_settings, db_engine=db_engine)

    def loopback_adapter(target: EngineTarget) -> EngineAdapter:
        real = dataclasses.replace(
            target,
            kind="reference",
            url=reference_engine.base_url,
            metrics_url=None,
            admin_token=reference_engine.admin_token,
        )
        return adapter_for(real)

    app.state.adapter_factory = loopback_adapter
    statuses: Counter[int] = Counter()
    with serve_asgi(app) as base_url:
        report = fuzz(
            base_url,
            headers=auth(Role.admin),
            skip=SKIP,
            on_response=lambda _op, status: statuses.update([status]),
        )
    assert len(report.operations) >= 20
    assert report.requests >= 10 * len(report.operations)
    assert not report.failures, "\n\n".join(report.failures[:10])
    # The fuzzer reached the routes' own logic, not only the validation layer.
    assert statuses[422] > 0 and sum(n for s, n in statuses.items() if s < 300) > 0
