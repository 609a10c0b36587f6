"""Credentials in URLs (``http://user:pw@host``) are secrets: every URL that leaves the process
(API replies, CLI lines, error messages, logs, the audit log) goes through :func:`redact_url`
or :func:`redact_urls_in` first. The stored value keeps the credentials the engine needs."""

from __future__ import annotations

import re
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

REDACTED = "***"
# scheme://userinfo@ inside free text (error messages of HTTP clients name the URL).
_USERINFO_IN_TEXT = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")


def redact_url(url: str) -> str:
    """The URL with any user name and password replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_urls_in(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{REDACTED}@{host}"))


def redact_urls_in(text: str) -> str:
    """Free text with the userinfo of every URL in it replaced by ``***``."""
    return _USERINFO_IN_TEXT.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
