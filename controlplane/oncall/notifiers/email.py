"""Email over SMTP (smtplib): STARTTLS by default, refused if the server does not offer it,
so a page is never sent in the clear by accident; implicit TLS or plain for a loopback
relay when configured. The ``Message-ID`` is derived from the idempotency key, so a message
sent twice after a crash threads as one in mail clients."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from controlplane.domain.escalation import ChannelKind
from controlplane.oncall.messages import Message
from controlplane.oncall.notifiers.base import DeliveryError
from controlplane.oncall.notifiers.base import Destination
from controlplane.settings import SmtpSettings


class EmailNotifier:
    kind = ChannelKind.email

    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings

    def _context(self) -> ssl.SSLContext:
        ca = self._settings.ca_file
        return ssl.create_default_context(cafile=str(ca) if ca else None)

    def _compose(self, message: Message, to: str) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self._settings.from_addr
        mail["To"] = to
        mail["Subject"] = message.headline
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = f"<{message.key.replace(':', '.')}@cplane>"
        if message.dedup_key:
            mail["References"] = f"<{message.dedup_key}@cplane>"
        mail["X-Cplane-Idempotency-Key"] = message.key
        mail.set_content(message.text())
        return mail

    def send(self, message: Message, destination: Destination) -> None:
        s = self._settings
        if not s.host:
            raise DeliveryError(
                "no SMTP server configured (CP_ONCALL__SMTP__HOST)", retryable=False
            )
        mail = self._compose(message, destination.address)
        try:
            client: smtplib.SMTP
            if s.security == "ssl":
                client = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout_s, context=self._context()
                )
            else:
                client = smtplib.SMTP(s.host, s.port, timeout=s.timeout_s)
            with client:
                client.ehlo()
                if s.security == "starttls":
                    if not client.has_extn("starttls"):
                        raise DeliveryError(
                            f"SMTP server {s.host} does not offer STARTTLS", retryable=False
                        )
                    client.starttls(context=self._context())
                    client.ehlo()
                if s.username:
                    password = s.password.get_secret_value() if s.password else ""
                    client.login(s.username, password)
                client.send_message(mail)
        except DeliveryError:
            raise
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryError(
                f"recipient refused ({codes})", retryable=all(400 <= c < 500 for c in codes)
            ) from exc
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"SMTP login refused ({exc.smtp_code})", retryable=False) from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"SMTP {exc.smtp_code}", retryable=400 <= exc.smtp_code < 500
            ) from exc
        except ssl.SSLError as exc:
            raise DeliveryError(
                f"TLS with {s.host} failed: {exc.reason}", retryable=False
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"SMTP {s.host}:{s.port}: {exc}", retryable=True) from exc
