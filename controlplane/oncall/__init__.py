"""On-call (layer 3): getting incidents to a person.

The store (layer 1) groups alerts into incidents and writes every page to the outbox in the
transaction that decided it; this package does the rest: the leader's escalation and sender
jobs (:mod:`controlplane.oncall.jobs`), delivery with retries (:mod:`.sender`), the channels
behind one protocol (:mod:`.notifiers`), the messages they carry (:mod:`.messages`) and the
signed one-click acknowledge / resolve links (:mod:`.tokens`). See docs/oncall.md.
"""

from controlplane.oncall.jobs import OncallJobSource
from controlplane.oncall.messages import Message
from controlplane.oncall.metrics import OncallMetrics
from controlplane.oncall.notifiers import DeliveryError
from controlplane.oncall.notifiers import Notifier
from controlplane.oncall.notifiers import default_notifiers
from controlplane.oncall.sender import Sender
from controlplane.oncall.sender import SendReport
from controlplane.oncall.tokens import ActionClaim
from controlplane.oncall.tokens import issue_action_token
from controlplane.oncall.tokens import verify_action_token

__all__ = [
    "ActionClaim",
    "DeliveryError",
    "Message",
    "Notifier",
    "OncallJobSource",
    "OncallMetrics",
    "SendReport",
    "Sender",
    "default_notifiers",
    "issue_action_token",
    "verify_action_token",
]
