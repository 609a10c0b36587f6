"""The channels a page goes out on, all behind :class:`Notifier`."""

from controlplane.oncall.notifiers.base import DeliveryError
from controlplane.oncall.notifiers.base import Destination
from controlplane.oncall.notifiers.base import Notifier
from controlplane.oncall.notifiers.email import EmailNotifier
from controlplane.oncall.notifiers.pagerduty import PagerDutyNotifier
from controlplane.oncall.notifiers.registry import default_notifiers
from controlplane.oncall.notifiers.slack import SlackNotifier
from controlplane.oncall.notifiers.webhook import WebhookNotifier
from controlplane.oncall.notifiers.webhook import signature

__all__ = [
    "DeliveryError",
    "Destination",
    "EmailNotifier",
    "Notifier",
    "PagerDutyNotifier",
    "SlackNotifier",
    "WebhookNotifier",
    "default_notifiers",
    "signature",
]
