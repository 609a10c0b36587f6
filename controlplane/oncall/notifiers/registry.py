"""The built-in notifiers, one per channel kind, built from settings."""

from __future__ import annotations

from controlplane.domain.escalation import ChannelKind
from controlplane.oncall.notifiers.base import Notifier
from controlplane.oncall.notifiers.email import EmailNotifier
from controlplane.oncall.notifiers.pagerduty import PagerDutyNotifier
from controlplane.oncall.notifiers.slack import SlackNotifier
from controlplane.oncall.notifiers.webhook import WebhookNotifier
from controlplane.settings import OncallSettings


def default_notifiers(settings: OncallSettings) -> dict[ChannelKind, Notifier]:
    timeout = settings.http_timeout_s
    return {
        ChannelKind.email: EmailNotifier(settings.smtp),
        ChannelKind.slack: SlackNotifier(timeout_s=timeout),
        ChannelKind.pagerduty: PagerDutyNotifier(url=settings.pagerduty_url, timeout_s=timeout),
        ChannelKind.webhook: WebhookNotifier(timeout_s=timeout),
    }
