"""Each notifier against a receiver that speaks its channel's contract: a real SMTP server
(aiosmtpd, STARTTLS required), and local receivers mirroring PagerDuty Events v2 and Slack's
incoming webhooks (those services cannot run here), and a signed generic webhook."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from pathlib import Path

import pytest

from controlplane.domain.incidents import NotifyAction
from controlplane.oncall.messages import Message
from controlplane.oncall.notifiers import DeliveryError
from controlplane.oncall.notifiers import Destination
from controlplane.oncall.notifiers import EmailNotifier
from controlplane.oncall.notifiers import PagerDutyNotifier
from controlplane.oncall.notifiers import SlackNotifier
from controlplane.oncall.notifiers import WebhookNotifier
from controlplane.oncall.receivers import PagerDutyReceiver
from controlplane.oncall.receivers import SlackReceiver
from controlplane.oncall.receivers import WebhookReceiver
from controlplane.settings import SmtpSettings
from tests.controlplane.oncall.smtp import smtp_server

pytestmark = pytest.mark.slow
KEY = "b" * 32


def _message(action: NotifyAction = NotifyAction.trigger, **kw: object) -> Message:
    values: dict[str, object] = {
        "key": "cplane-incident-7:1:trigger:0.0:cm3",
        "action": action,
        "title": "EngineHighP99Latency on llm-a: p99 above SLO",
        "summary": "p99 latency above SLO",
        "severity": "critical",
        "engine": "llm-a",
        "slo": "p99 < 500 ms",
        "observed": "812 ms",
        "link": "http://cp.example/ui/incidents/7",
        "ack_url": "http://cp.example/api/v1/oncall/actions/tok-a",
        "resolve_url": "http://cp.example/api/v1/oncall/actions/tok-r",
        "dedup_key": "cplane-incident-7",
        "incident_id": 7,
        "recipient": "alice",
        "triggered_at": datetime(2026, 12, 1, 12, tzinfo=UTC),
        "labels": {"alertname": "EngineHighP99Latency"},
    }
    values.update(kw)
    return Message(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def pagerduty() -> Iterator[PagerDutyReceiver]:
    receiver = PagerDutyReceiver().start()
    yield receiver  # type: ignore[misc]
    receiver.stop()


def test_email_goes_over_starttls_with_the_evidence_and_links(tmp_path: Path) -> None:
    with smtp_server(tmp_path) as (inbox, port, ca):
        notifier = EmailNotifier(
            SmtpSettings(host="127.0.0.1", port=port, security="starttls", ca_file=ca)
        )
        notifier.send(_message(), Destination("alice@example.com", {}))
        # Without the CA the certificate is refused: TLS is verified, not just negotiated.
        unverified = EmailNotifier(SmtpSettings(host="127.0.0.1", port=port))
        with pytest.raises(DeliveryError) as err:
            unverified.send(_message(), Destination("alice@example.com", {}))
        assert not err.value.retryable
        # A server without STARTTLS is refused before anything is sent in the clear.
        plain = EmailNotifier(SmtpSettings(host="127.0.0.1", port=port, security="none"))
        with pytest.raises(DeliveryError):
            plain.send(_message(), Destination("alice@example.com", {}))  # server requires TLS
    (mail,) = inbox.messages
    assert mail["To"] == "alice@example.com"
    assert mail["Subject"] == "[TRIGGERED] #7 EngineHighP99Latency on llm-a: p99 above SLO"
    assert mail["Message-ID"] == "<cplane-incident-7.1.trigger.0.0.cm3@cplane>"
    body = mail.get_payload(decode=True).decode()  # type: ignore[union-attr]
    for text in ("SLO: p99 < 500 ms", "Observed: 812 ms", "Engine: llm-a", "/ui/incidents/7"):
        assert text in body
    assert "Acknowledge: http://cp.example/api/v1/oncall/actions/tok-a" in body


def test_email_without_a_server_configured_is_a_permanent_failure() -> None:
    with pytest.raises(DeliveryError) as err:
        EmailNotifier(SmtpSettings()).send(_message(), Destination("a@example.com", {}))
    assert not err.value.retryable


def test_pagerduty_trigger_retry_ack_resolve_share_one_alert(
    pagerduty: PagerDutyReceiver,
) -> None:
    notifier = PagerDutyNotifier(url=pagerduty.url, timeout_s=5)
    dest = Destination("pagerduty", {"routing_key": KEY})
    notifier.send(_message(), dest)
    notifier.send(_message(), dest)  # a retry after a crash: the same alert
    assert pagerduty.opened["cplane-incident-7"] == 1
    notifier.send(_message(NotifyAction.acknowledge), dest)
    assert pagerduty.alerts["cplane-incident-7"] == "acknowledged"
    notifier.send(_message(NotifyAction.resolve), dest)
    assert pagerduty.alerts["cplane-incident-7"] == "resolved"
    trigger = pagerduty.events[0]
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["custom_details"]["observed"] == "812 ms"
    notifier.close()


def test_pagerduty_bad_event_is_final_and_429_carries_retry_after(
    pagerduty: PagerDutyReceiver,
) -> None:
    notifier = PagerDutyNotifier(url=pagerduty.url, timeout_s=5)
    with pytest.raises(DeliveryError) as bad:
        notifier.send(_message(), Destination("pagerduty", {"routing_key": "short"}))
    assert not bad.value.retryable and "400" in str(bad.value)
    pagerduty.faults.throttle, pagerduty.faults.retry_after = 1, 7
    with pytest.raises(DeliveryError) as slow:
        notifier.send(_message(), Destination("pagerduty", {"routing_key": KEY}))
    assert slow.value.retryable and slow.value.retry_after_s == 7
    notifier.close()


def test_slack_webhook_contract() -> None:
    slack = SlackReceiver().start()
    try:
        url = slack.new_webhook()
        notifier = SlackNotifier(timeout_s=5)
        notifier.send(_message(), Destination("hooks.slack.com/…", {"url": url}))
        (msg,) = slack.messages
        assert msg["text"].startswith("[TRIGGERED] #7")
        rendered = str(msg["blocks"])
        assert "812 ms" in rendered and "tok-a|Acknowledge" in rendered
        with pytest.raises(DeliveryError) as gone:
            notifier.send(_message(), Destination("x", {"url": url + "x"}))
        assert not gone.value.retryable and "no_service" in str(gone.value)
        slack.faults.throttle, slack.faults.retry_after = 1, 3
        with pytest.raises(DeliveryError) as slow:
            notifier.send(_message(), Destination("x", {"url": url}))
        assert slow.value.retryable and slow.value.retry_after_s == 3
    finally:
        slack.stop()


def test_webhook_is_signed_and_carries_the_idempotency_key() -> None:
    secret = "s3cret-s3cret-s3cret"
    hook = WebhookReceiver(secret).start()
    try:
        notifier = WebhookNotifier(timeout_s=5)
        notifier.send(_message(), Destination("x", {"url": hook.base_url, "secret": secret}))
        assert hook.deliveries == {"cplane-incident-7:1:trigger:0.0:cm3": 1}
        assert hook.bodies[0]["observed"] == "812 ms"
        with pytest.raises(DeliveryError) as forged:
            notifier.send(_message(), Destination("x", {"url": hook.base_url, "secret": "wrong"}))
        assert not forged.value.retryable and "401" in str(forged.value)
        hook.faults.fail_rate = 1.0
        with pytest.raises(DeliveryError) as down:
            notifier.send(_message(), Destination("x", {"url": hook.base_url, "secret": secret}))
        assert down.value.retryable
        notifier.close()
    finally:
        hook.stop()
