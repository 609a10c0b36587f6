"""Writing a rule file only once ``promtool check rules`` accepts it, and telling
Prometheus to reload.

The new text goes to a temporary file beside the target, is checked there, and replaces
the target by ``rename`` (atomic on one filesystem): a Prometheus reloading at any moment
reads the old file or the new one, never a half-written or rejected one.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import httpx

from controlplane.domain import DomainError
from controlplane.domain import ValidationError

log = logging.getLogger(__name__)


class PrometheusError(DomainError):
    """promtool is missing, or Prometheus refused or missed a reload."""


def find_promtool(promtool: str = "promtool") -> str:
    found = shutil.which(promtool)
    if found is None:
        raise PrometheusError(
            f"{promtool!r} not found: install Prometheus (Debian package `prometheus`) to "
            "check rule files before they are written"
        )
    return found


def check_rules(path: Path, *, promtool: str = "promtool") -> None:
    """Raises ValidationError with promtool's complaint when the file is rejected."""
    done = subprocess.run(
        [find_promtool(promtool), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        detail = " ".join((done.stdout + done.stderr).split())
        raise ValidationError(f"promtool rejected the rules: {detail[:500]}", field="rules")


def write_checked(text: str, path: Path, *, promtool: str = "promtool") -> bool:
    """Write ``text`` to ``path`` if promtool accepts it; ``False`` when unchanged.

    Raises:
        ValidationError: promtool rejected it (``path`` untouched).
        PrometheusError: promtool is not installed (``path`` untouched).
    """
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        # Rules hold no secrets and Prometheus runs as its own user: world-readable.
        tmp.chmod(0o644)
        check_rules(tmp, promtool=promtool)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("wrote rule file %s", path)
    return True


def reload(url: str, *, timeout_s: float = 10.0) -> None:
    """``POST /-/reload`` (Prometheus started with ``--web.enable-lifecycle``).

    Raises:
        PrometheusError: unreachable, or the reload failed (Prometheus keeps the old rules).
    """
    target = url.rstrip("/") + "/-/reload"
    try:
        response = httpx.post(target, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise PrometheusError(f"Prometheus at {url} is unreachable: {exc}") from exc
    if response.status_code != 200:
        raise PrometheusError(
            f"Prometheus at {url} refused the reload (HTTP {response.status_code}): "
            f"{response.text.strip()[:300]}"
        )
    log.info("Prometheus at %s reloaded its configuration", url)
