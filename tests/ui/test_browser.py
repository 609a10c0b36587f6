"""The UI in a real browser (Debian's chromium driven by Playwright) against a real control
plane (uvicorn in a thread, collectors, guard and tuner running) and a real reference
engine process: sign in, see the engine, apply a change and watch its rollout commit
without a reload, see a breaching change rolled back with its evidence, run a short tuning
study and see its trials and plots, acknowledge an incident, and find a viewer's forged
posts refused.

One engine, one control plane and one browser serve the whole module; the tests run in
file order and each sets the SLO it needs. Screenshots of every page land in
``$CP_UI_SCREENSHOTS`` (default: the session's temporary directory).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser
from playwright.sync_api import BrowserContext
from playwright.sync_api import Page
from playwright.sync_api import expect
from sqlalchemy import Engine

from controlplane.api.app import create_app
from controlplane.domain import Role
from controlplane.domain.alerts import AlertSource
from controlplane.schemas.engines import EngineCreate
from controlplane.settings import CollectorSettings
from controlplane.settings import GuardSettings
from controlplane.settings import Settings
from controlplane.settings import TunerSettings
from controlplane.store import alerts
from controlplane.store import engines
from controlplane.store import schema
from controlplane.store import users
from controlplane.store.base import utcnow
from controlplane.store.database import make_engine
from controlplane.store.database import make_session_factory
from controlplane.store.database import unit_of_work
from tests.controlplane.guard.conftest import Load
from tests.fixtures.asgi import serve_asgi
from tests.fixtures.engines import RunningEngine
from tests.fixtures.engines import start_engine
from tests.ui.conftest import CHROMIUM
from tests.ui.conftest import Account

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian's chromium is missing"),
]

# The machine running the suite is shared: give each expectation room before it fails.
expect.set_options(timeout=15_000)

GUARD = GuardSettings(
    interval_s=0.2,
    baseline_s=1.5,
    warmup_s=0.3,
    bake_s=3.0,
    min_requests=20,
    no_data_timeout_s=1.0,
    unreachable_s=1.0,
    rollback_timeout_s=20.0,
    heartbeat_s=0.3,
    stale_after_s=2.0,
)
TUNER = TunerSettings(
    warmup_s=0.3,
    window_s=0.8,
    min_windows=1,
    max_windows=2,
    tolerance=0.2,
    repeats=1,
    bake_s=2.0,
    lease_s=0.3,
    stale_after_s=5.0,
)


@dataclass
class Plane:
    url: str
    engine: RunningEngine
    admin: Account
    operator: Account
    viewer: Account
    shots: Path
    db: Engine


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    tmp = tmp_path_factory.mktemp("ui-browser")
    shots = Path(os.environ.get("CP_UI_SCREENSHOTS") or tmp / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    engine = start_engine(tmp, "--batch-size", "8")
    settings = Settings(
        data_dir=tmp,
        guard=GUARD,
        tuner=TUNER,
        collectors=CollectorSettings(
            enabled=True, scrape_interval_s=1.0, gpu=False, host=False, flush_interval_s=0.5
        ),
    )
    db = make_engine(settings)
    schema.upgrade(db)
    accounts = {}
    with unit_of_work(make_session_factory(db)) as s:
        for role in (Role.admin, Role.operator, Role.viewer):
            user = users.create_user(s, name=f"{role.value}-1", role=role, actor="t")
            _row, secret = users.create_token(s, user=user, name="ui", ttl=None, actor="t")
            accounts[role] = Account(user.name, secret)
        data = EngineCreate.model_validate(
            {
                "name": "ref",
                "url": engine.url,
                "admin_token": engine.admin_token,
                "labels": {"team": "llm", "env": "test"},
            }
        )
        engines.add_engine(s, data=data, actor="t")
    try:
        with serve_asgi(create_app(settings, db_engine=db)) as url:
            yield Plane(
                url,
                engine,
                accounts[Role.admin],
                accounts[Role.operator],
                accounts[Role.viewer],
                shots,
                db,
            )
    finally:
        engine.stop()
        db.dispose()


def _signed_in(browser: Browser, plane: Plane, who: Account) -> tuple[BrowserContext, Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{plane.url}/ui/fleet")
    expect(page).to_have_url(re.compile(r"/ui/sign-in\?next=/ui/fleet"))
    page.get_by_label("User name").fill(who.name)
    page.get_by_label("API token").fill(who.token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{plane.url}/ui/fleet")
    return context, page


def _shot(page: Page, plane: Plane, name: str) -> None:
    page.screenshot(path=str(plane.shots / f"{name}.png"), full_page=True)


def _set_slo(page: Page, plane: Plane, spec: str) -> None:
    page.goto(f"{plane.url}/ui/engines/ref")
    form = page.locator("#slo-form")
    form.get_by_label("Spec").fill(spec)
    form.get_by_role("button", name="Set SLO").click()
    expect(page.locator("#slos")).to_contain_text(spec)


def _apply(page: Page, changes: dict[str, str], bake_s: str) -> None:
    form = page.locator("#apply-form")
    for knob, value in changes.items():
        form.locator(f'input[name="knob.{knob}"]').fill(value)
    form.get_by_label(re.compile("Bake time")).fill(bake_s)
    form.get_by_role("button", name="Apply through the guard").click()


def test_sign_in_see_the_fleet_and_watch_a_change_commit(browser: Browser, plane: Plane) -> None:
    context, page = _signed_in(browser, plane, plane.operator)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    expect(page.locator('tr[data-engine-id] >> text="ref"')).to_be_visible()
    load = Load(plane.engine.url, concurrency=4, duration_s=9)
    _set_slo(page, plane, "p99_ms<=10000")
    expect(page.locator("figure.chart canvas").first).to_be_visible(timeout=15_000)
    _apply(page, {"max_batch_size": "4"}, bake_s="3")
    expect(page).to_have_url(re.compile(r"/ui/rollouts/\d+$"))
    state = page.locator("#rollout-state")
    expect(state).to_have_text(re.compile("applying|baking|committed"))
    expect(state).to_have_text("committed", timeout=30_000)  # htmx polling, no reload
    expect(page.locator("#rollout-live")).to_contain_text("Verdict: pass")
    _shot(page, plane, "rollout-committed")
    page.goto(f"{plane.url}/ui/engines/ref")
    expect(page.locator("#active-rollout")).to_contain_text("committed")
    expect(page.locator(".chart-body", has_text="loading")).to_have_count(0, timeout=15_000)
    expect(page.locator("figure.chart canvas").first).to_be_visible()
    _shot(page, plane, "engine")
    # Sparklines, health and SLO status of the visible rows arrive in one request.
    page.goto(f"{plane.url}/ui/fleet")
    expect(page.locator("td.health .state")).to_have_text("up", timeout=15_000)
    expect(page.locator("td .slo")).to_have_text("met", timeout=15_000)
    expect(page.locator("td.qps .spark-last")).to_have_text(re.compile(r"^[0-9.e+]+$"))
    _shot(page, plane, "fleet")
    load.join()
    assert not [e for e in errors if "Content Security Policy" in e], errors
    context.close()


def test_a_breaching_change_is_shown_rolled_back_with_its_evidence(
    browser: Browser, plane: Plane
) -> None:
    context, page = _signed_in(browser, plane, plane.operator)
    _set_slo(page, plane, "p99_ms<=600")
    # Batches that wait a second to fill, under light load: every request takes >= 1 s.
    load = Load(plane.engine.url, concurrency=8, duration_s=15)
    _apply(page, {"max_queue_delay_ms": "1000", "max_batch_size": "64"}, bake_s="20")
    expect(page).to_have_url(re.compile(r"/ui/rollouts/\d+$"))
    expect(page.locator("#rollout-state")).to_have_text("rolled_back", timeout=40_000)
    live = page.locator("#rollout-live")
    expect(live).to_contain_text("Verdict: breach")
    expect(live).to_contain_text("Breach of p99")
    expect(live).to_contain_text("Back on last known good")
    expect(live.locator("figure.chart canvas")).to_be_visible(timeout=10_000)
    _shot(page, plane, "rollout-rolled-back")
    load.join()
    context.close()


def test_a_short_tuning_run_shows_trials_and_plots(browser: Browser, plane: Plane) -> None:
    context, page = _signed_in(browser, plane, plane.operator)
    _set_slo(page, plane, "p99_ms<=2000")
    page.goto(f"{plane.url}/ui/tuning")
    form = page.locator("#tuning-form")
    form.locator('select[name="engine"]').select_option("ref")
    form.locator('input[name="load"]').fill("concurrency=4")
    form.locator('input[name="trials"]').fill("2")
    form.locator('input[name="knobs"]').fill("max_batch_size")
    form.locator('select[name="sampler"]').select_option("random")
    form.locator('input[name="apply_best"]').uncheck()
    form.get_by_role("button", name="Start tuning").click()
    expect(page).to_have_url(re.compile(r"/ui/tuning/\d+$"))
    expect(page.locator("#run-state")).to_have_text("done", timeout=60_000)
    expect(page.locator("#trials tbody tr")).to_have_count(2)
    page.locator("#redraw-plots").click()
    expect(page.locator("#plots .plot .main-svg").first).to_be_visible(timeout=15_000)
    expect(page.locator("#plots")).to_contain_text("Throughput vs p99")
    expect(page.locator("#plots")).to_contain_text("Optimization history")
    # Plotly's own stylesheet is served (its inline one is refused by the CSP): the SVG
    # layers stack, so the plot is no taller than its box.
    height = page.locator("#plots .plot").first.evaluate("e => e.scrollHeight")
    assert height <= 420, height
    _shot(page, plane, "tuning-run")
    page.goto(f"{plane.url}/ui/tuning")
    _shot(page, plane, "tuning")
    context.close()


def test_an_operator_acknowledges_an_incident(browser: Browser, plane: Plane) -> None:
    # An alert raised through the store's own function opens its incident, as a detector's
    # would (no route: it pages nobody).
    with unit_of_work(make_session_factory(plane.db)) as s:
        ref = engines.get_engine(s, "ref")
        alerts.raise_alert(
            s,
            alerts.RaisedAlert(
                fingerprint="ui-browser-p99",
                alertname="EngineHighP99Latency",
                source=AlertSource.detector,
                engine_id=ref.id,
                labels={"alertname": "EngineHighP99Latency", "engine": "ref", "severity": "page"},
                annotations={"summary": "p99 above its SLO"},
            ),
            actor="t",
            now=utcnow(),
        )
    context, page = _signed_in(browser, plane, plane.operator)
    page.goto(f"{plane.url}/ui/alerts")
    open_incidents = page.locator("#open-incidents")
    expect(open_incidents).to_contain_text("EngineHighP99Latency")
    _shot(page, plane, "alerts")
    open_incidents.get_by_role("link", name=re.compile("EngineHighP99Latency")).click()
    expect(page).to_have_url(re.compile(r"/ui/incidents/\d+$"))
    expect(page.locator("#incident-state")).to_have_text("triggered")
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.locator("#incident-state")).to_have_text("acknowledged")
    expect(page.locator("#incident-timeline")).to_contain_text(f"by user:{plane.operator.name}")
    expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)
    _shot(page, plane, "incident")
    context.close()


def test_a_viewer_cannot_mutate_and_posts_need_csrf(browser: Browser, plane: Plane) -> None:
    context, page = _signed_in(browser, plane, plane.viewer)
    page.goto(f"{plane.url}/ui/engines/ref")
    expect(page.locator("#slos")).to_be_visible()
    expect(page.locator("#apply-form")).to_have_count(0)
    expect(page.get_by_role("button", name="Set SLO")).to_have_count(0)
    csrf = page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert csrf
    forged = page.request.post(
        f"{plane.url}/ui/engines/ref/slos", form={"spec": "p99_ms<=1", "csrf": csrf}
    )
    assert forged.status == 403
    _shot(page, plane, "engine-viewer")
    context.close()

    context, page = _signed_in(browser, plane, plane.admin)
    no_token = page.request.post(f"{plane.url}/ui/engines/ref/slos", form={"spec": "p99_ms<=1"})
    assert no_token.status == 403
    for name in ("chaos", "admin", "rollouts"):
        page.goto(f"{plane.url}/ui/{name}")
        expect(page.locator("h1")).to_be_visible()
        _shot(page, plane, name)
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{plane.url}/ui/sign-in")
    _shot(page, plane, "sign-in")
    page.goto(f"{plane.url}/ui/engines/ref")
    expect(page).to_have_url(re.compile(r"/ui/sign-in\?next=/ui/engines/ref"))
    context.close()
