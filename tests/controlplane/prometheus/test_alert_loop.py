"""The whole alert path, every part real: a reference engine registered in a ``cplane up``
with a latency SLO (``p99_ms<=500``), a Prometheus from ``cplane prometheus config`` that
discovers and scrapes it every second, an Alertmanager (Debian's ``prometheus-alertmanager``)
from ``cplane alertmanager config`` posting to the control plane's webhook with an operator
token. The fault is real: the engine's admin config is set to wait up to a second for a
batch to fill (``max_queue_delay_ms=1000``, ``max_batch_size=64``), so under a light,
steady load every request takes over a second. The SLO's burn-rate alert must fire, arrive
through Alertmanager and be stored; after the config is put back it must resolve there.

The SLO rule file is written by the control plane's own rule job (``CP_PROMETHEUS__URL``
set), and the test checks that Prometheus loaded it. Its windows (5 m to 3 d) are too long
for a test, and the generator has no window parameter, so a **test-only rule file** holds
the same generated rules with every window and ``for:`` divided by 60 (5 m -> 5 s, 30 m -> 30 s,
1 h -> 1 m, ``for: 2m`` -> 2 s), record names suffixed ``_short`` so they do not clash with the
real ones, and the label ``windows="short"``. Run with ``-s`` to print the measured fault
to stored alert and fault end to stored resolution.

On-call rides the same loop: the alert opens an incident that pages the person on call
(alice) by email, through a real SMTP server requiring STARTTLS, and through a receiver
implementing PagerDuty's Events v2 contract; nobody acknowledges, so the next step pages bob;
the acknowledge link in alice's mail stops the escalation (PagerDuty is told), and the
alert resolving resolves the incident (PagerDuty again).
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from controlplane.oncall.receivers import PagerDutyReceiver
from controlplane.prometheus.slo_rules import WINDOWS
from tests.controlplane.oncall.smtp import smtp_server
from tests.fixtures.cli import ControlPlane
from tests.fixtures.cli import run_cplane
from tests.fixtures.engines import free_port
from tests.fixtures.engines import start_engine
from tests.fixtures.prom import Prometheus
from tests.fixtures.prom import require_tool

ALERT = "EngineErrorBudgetBurn"
SCALE = 60
SLOW = {"max_queue_delay_ms": 1000.0, "max_batch_size": 64}


def _seconds(text: str) -> int:
    value, unit = int(text[:-1]), text[-1]
    return value * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def short_windows(rules_text: str) -> str:
    """The generated SLO rules with every window and ``for:`` divided by ``SCALE``."""
    text = rules_text
    for window in WINDOWS:
        short = f"{_seconds(window) // SCALE}s"
        text = text.replace(f"[{window}]", f"[{short}]")
        text = re.sub(rf"ratio_rate{window}\b", f"ratio_rate{window}_short", text)
    doc = yaml.safe_load(text)
    for group in doc["groups"]:
        group["name"] += "-short"
        for rule in group["rules"]:
            rule.setdefault("labels", {})["windows"] = "short"
            if "for" in rule:
                rule["for"] = f"{_seconds(rule['for']) // SCALE}s"
    return yaml.safe_dump(doc, sort_keys=False)


def _until(check: Callable[[], Any], what: str, timeout_s: float = 40.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


class Load:
    """A steady open-loop client: one short completion every ``1 / rps`` seconds, each in a
    thread of its own, so that a slowed engine gets the same arrivals."""

    def __init__(self, url: str, rps: float = 4.0) -> None:
        self.url, self.period = f"{url}/v1/completions", 1.0 / rps
        self.stop_event = threading.Event()
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _one(self) -> None:
        try:
            body = {"model": "tiny", "prompt": "Hello", "max_tokens": 2}
            httpx.post(self.url, json=body, timeout=30).raise_for_status()
        except httpx.HTTPError as exc:
            self.errors.append(str(exc))

    def _run(self) -> None:
        while not self.stop_event.wait(self.period):
            threading.Thread(target=self._one, daemon=True).start()

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.thread.join()


class Alertmanager:
    def __init__(self, config: Path, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.argv = [
            require_tool("prometheus-alertmanager"),
            f"--config.file={config}",
            f"--storage.path={workdir / 'am'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
        ]
        self.log = workdir / "alertmanager.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT)

        def ready() -> bool:
            assert self.process is not None and self.process.poll() is None, self.log.read_text()[
                -2000:
            ]
            try:
                return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        _until(ready, "alertmanager ready", 30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _page_incident(api: httpx.Client) -> dict[str, Any]:
    (page,) = [
        i for i in api.get("/api/v1/incidents").json() if i["labels"]["severity"] == "critical"
    ]
    return dict(page)


def _mails_to(inbox: Any, user: str) -> list[Any]:
    return [m for m in inbox.messages if m["To"] == f"{user}@example.com"]


def _oncall_pages_and_ack(
    api: httpx.Client, inbox: Any, pagerduty: PagerDutyReceiver, fault_at: float
) -> float:
    """alice paged by mail and PagerDuty, bob after one step, alice's mail link acks."""
    _until(lambda: _mails_to(inbox, "alice") and pagerduty.events, "alice paged")
    paged_s = time.monotonic() - fault_at
    incident = _page_incident(api)
    assert incident["state"] == "triggered" and incident["engine"] == "ref"
    trigger = pagerduty.events[0]
    assert trigger["event_action"] == "trigger" and trigger["dedup_key"] == incident["key"]
    mail = _mails_to(inbox, "alice")[0]
    body = mail.get_payload(decode=True).decode()
    assert "SLO:" in body or "p99" in body
    assert f"/ui/incidents/{incident['id']}" in body
    _until(lambda: _mails_to(inbox, "bob"), "bob paged when nobody acknowledged", STEP_S * 10)
    link = re.search(r"^Acknowledge: (\S+)", body, re.M)
    assert link is not None
    assert httpx.post(link[1], timeout=10).status_code == 200
    acked = api.get(f"/api/v1/incidents/{incident['id']}").json()
    assert acked["state"] == "acknowledged" and acked["acknowledged_by"] == "user:alice"
    _until(
        lambda: [e["event_action"] for e in pagerduty.events][-1] == "acknowledge",
        "PagerDuty told of the ack",
    )
    pages = len(inbox.messages)
    time.sleep(STEP_S * 2)  # two more steps were due: the ack stopped them
    assert len(inbox.messages) == pages
    return paged_s


def _token(env: dict[str, str], path: Path, user: str, role: str) -> Path:
    run_cplane(env, "user", "create", user, "--role", role)
    path.write_text(run_cplane(env, "token", "create", user))
    path.chmod(0o600)
    return path


STEP_S = 3
SCHEDULE = {
    "name": "primary",
    "timezone": "Europe/Berlin",
    "layers": [
        {"name": "w", "kind": "weekly", "start": "2026-01-05T09:00:00", "participants": ["alice"]}
    ],
}
POLICY = {
    "name": "default",
    "repeat": 2,
    "steps": [
        {"targets": [{"kind": "schedule", "ref": "primary"}], "delay_s": STEP_S},
        {"targets": [{"kind": "user", "ref": "bob"}], "delay_s": STEP_S},
    ],
}


def _paging(env: dict[str, str], tmp_path: Path) -> None:
    """alice on call (mail and PagerDuty), bob next (mail), pages routed to them."""
    run_cplane(env, "user", "create", "alice", "--role", "operator")
    run_cplane(env, "user", "create", "bob", "--role", "operator")
    for user in ("alice", "bob"):
        run_cplane(
            env, "oncall", "contact", "add", user, "mail", "--kind", "email",
            "--address", f"{user}@example.com",
        )  # fmt: skip
    run_cplane(
        {**env, "PD_KEY": "p" * 32},
        "oncall", "contact", "add", "alice", "pd", "--kind", "pagerduty", "--secret-env", "PD_KEY",
    )  # fmt: skip
    (tmp_path / "schedule.yaml").write_text(yaml.safe_dump(SCHEDULE))
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(POLICY))
    run_cplane(env, "oncall-schedule", "create", str(tmp_path / "schedule.yaml"))
    run_cplane(env, "escalation", "create", str(tmp_path / "policy.yaml"))
    # Pages (critical) page; tickets open incidents of their own that page nobody.
    run_cplane(
        env, "oncall", "route", "add", "pages", "--policy", "default",
        "--match", "severity=critical",
        "--group-by", "alertname", "--group-by", "engine", "--group-by", "severity",
    )  # fmt: skip


@pytest.mark.slow
def test_engine_slowdown_fires_and_resolves_a_stored_slo_alert(tmp_path: Path) -> None:
    for tool in ("prometheus", "promtool", "prometheus-alertmanager"):
        require_tool(tool)
    with smtp_server(tmp_path) as (inbox, smtp_port, ca):
        pagerduty = PagerDutyReceiver().start()
        try:
            _loop(tmp_path, inbox, smtp_port, ca, pagerduty)
        finally:
            pagerduty.stop()


def _loop(
    tmp_path: Path, inbox: Any, smtp_port: int, ca: Path, pagerduty: PagerDutyReceiver
) -> None:
    engine = start_engine(tmp_path)
    prom = Prometheus(tmp_path / "prometheus.yml", tmp_path)
    rules = tmp_path / "slo.rules.yml"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CP_")},
        "CP_DATA_DIR": str(tmp_path / "cp"),
        "CP_PROMETHEUS__URL": prom.url,
        "CP_PROMETHEUS__RULES_FILE": str(rules),
        "CP_PROMETHEUS__RULES_INTERVAL_S": "1",
        "CP_ONCALL__SMTP__HOST": "127.0.0.1",
        "CP_ONCALL__SMTP__PORT": str(smtp_port),
        "CP_ONCALL__SMTP__CA_FILE": str(ca),
        "CP_ONCALL__PAGERDUTY_URL": pagerduty.url,
    }
    port = free_port()
    env["CP_ONCALL__BASE_URL"] = f"http://127.0.0.1:{port}"
    cp = ControlPlane(env, port)
    am: Alertmanager | None = None
    admin = {"Authorization": f"Bearer {engine.admin_token}"}
    api = httpx.Client(base_url=cp.url)
    try:
        run_cplane(env, "db", "upgrade")
        prom_token = _token(env, tmp_path / "prom.token", "prometheus", "viewer")
        am_token = _token(env, tmp_path / "am.token", "alertmanager", "operator")
        run_cplane(env, "engine", "add", "ref", "--url", engine.url)
        run_cplane(env, "slo", "set", "ref", "p99_ms<=500")
        _paging(env, tmp_path)
        short = tmp_path / "slo-short.rules.yml"
        short.write_text(short_windows(run_cplane(env, "prometheus", "rules", "--out", "-")))

        cp.start()
        api.headers["Authorization"] = f"Bearer {am_token.read_text()}"
        am_config = tmp_path / "alertmanager.yml"
        am_config.write_text(
            run_cplane(
                env,
                "alertmanager",
                "config",
                "--url",
                cp.url,
                "--token-file",
                str(am_token),
                "--group-wait",
                "1s",
                "--group-interval",
                "1s",
                "--repeat-interval",
                "1m",
            )  # fmt: skip
            + "\n"
        )
        am = Alertmanager(am_config, tmp_path)
        am.start()
        config = yaml.safe_load(
            run_cplane(
                env,
                "prometheus",
                "config",
                "--url",
                cp.url,
                "--token-file",
                str(prom_token),
                "--rules-file",
                str(rules),
                "--alertmanager",
                am.url,
                "--scrape-interval",
                "1s",
                "--evaluation-interval",
                "1s",
                "--sd-refresh-interval",
                "1s",
            )  # fmt: skip
        )
        config["rule_files"].append(str(short))
        prom.config.write_text(yaml.safe_dump(config, sort_keys=False))
        prom.start()

        def loaded() -> bool:
            groups = {g["name"] for g in prom.get("/api/v1/rules")["groups"]}  # type: ignore[index]
            return {"cplane-slo-ref-p99", "cplane-slo-ref-p99-short"} <= groups

        # The control plane's rule job wrote the SLO rules and reloaded Prometheus.
        _until(loaded, "the SLO rules written by the control plane and loaded")

        def stored(status: str) -> dict[str, Any] | None:
            """The page (a ticket may fire too; the Alertmanager inhibits it)."""
            found = api.get(
                "/api/v1/alerts", params={"alertname": ALERT, "engine": "ref", "status": status}
            ).json()
            return next(
                (
                    a
                    for a in found
                    if a["labels"].get("windows") == "short"
                    and a["labels"]["severity"] == "critical"
                ),
                None,
            )

        with Load(engine.url):
            # Healthy traffic scraped for a few seconds: nothing fires.
            def scraped() -> bool:
                result = prom.get(  # type: ignore[index]
                    "/api/v1/query",
                    query='cplane_slo:sli_error:ratio_rate5m_short{engine="ref",slo="p99"}',
                )["result"]
                return bool(result) and float(result[0]["value"][1]) == 0.0

            _until(scraped, "healthy traffic recorded")
            assert stored("firing") is None

            fault_at = time.monotonic()
            httpx.put(f"{engine.url}/admin/config", json=SLOW, headers=admin).raise_for_status()
            alert = _until(lambda: stored("firing"), "the SLO alert stored as firing", 45)
            fired_s = time.monotonic() - fault_at
            assert alert["engine"] == "ref"
            assert alert["labels"]["slo"] == "p99"
            paged_s = _oncall_pages_and_ack(api, inbox, pagerduty, fault_at)

            fixed_at = time.monotonic()
            httpx.put(
                f"{engine.url}/admin/config",
                json={"max_queue_delay_ms": 0.0, "max_batch_size": 8},
                headers=admin,
            ).raise_for_status()
            resolved = _until(lambda: stored("resolved"), "the SLO alert stored as resolved", 45)
            resolved_s = time.monotonic() - fixed_at
        assert resolved["fingerprint"] == alert["fingerprint"]

        def incident_resolved() -> bool:
            return bool(_page_incident(api)["state"] == "resolved")

        _until(incident_resolved, "the incident resolved with its alert")
        _until(
            lambda: [e["event_action"] for e in pagerduty.events][-1] == "resolve",
            "PagerDuty told of the resolve",
        )
        print(
            f"\nfault to stored alert: {fired_s:.1f} s; fault to first page: {paged_s:.1f} s; "
            f"fault end to stored resolution: {resolved_s:.1f} s"
        )
    finally:
        api.close()
        for part in (prom, am, cp, engine):
            if part is not None:
                part.stop()
