"""``cplane dashboards push``: upload the generated Grafana dashboards (``dashboards/``)
through Grafana's HTTP API, into a folder found or created by title, overwriting the
previous version of each dashboard (stable uids, so a push is repeatable)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from typing import Any

import httpx
import typer

from controlplane.domain import DomainError

app = typer.Typer(help="Grafana dashboards generated from dashboards/.", no_args_is_help=True)

PUSH_TIMEOUT_S = 10.0


def _token(path: Path) -> str:
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise DomainError(f"cannot read token file {path}: {exc.strerror or exc}") from None
    if not token:
        raise DomainError(f"token file {path} is empty")
    return token


class _Grafana:
    """The three routes of Grafana's HTTP API a push needs (folder list, folder create,
    dashboard create-or-update), on httpx.

    grafana-client would be the natural choice, but it depends on niquests, whose
    urllib3-future replaces the ``urllib3`` package that requests (and the test tools built
    on it) need; three routes do not justify that."""

    def __init__(self, base_url: str, token: str) -> None:
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=PUSH_TIMEOUT_S,
        )

    def close(self) -> None:
        self._client.close()

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            response = self._client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise DomainError(f"Grafana unreachable: {_first_line(exc)}") from None
        if response.status_code == 401:
            raise DomainError("Grafana refused the token (401): check --token-file")
        if response.status_code >= 400:
            raise DomainError(
                f"Grafana answered {response.status_code} to {method} {path}: "
                f"{_first_line(_message(response))}"
            )
        try:
            return response.json()
        except ValueError:
            raise DomainError(f"Grafana's answer to {method} {path} is not JSON") from None


def _message(response: httpx.Response) -> str:
    """Grafana's own ``message`` field, never the raw body of whatever answered."""
    try:
        body = response.json()
    except ValueError:
        return "no detail"
    message = body.get("message") if isinstance(body, dict) else None
    return message if isinstance(message, str) else "no detail"


def _folder_uid(api: _Grafana, title: str) -> str:
    """The uid of the folder titled ``title``, created when there is none."""
    folders = api.call("GET", "/api/folders")
    for folder in folders if isinstance(folders, list) else []:
        if isinstance(folder, dict) and folder.get("title") == title:
            return str(folder["uid"])
    created = api.call("POST", "/api/folders", {"title": title})
    return str(created["uid"])


def _first_line(message: object) -> str:
    lines = str(message).strip().splitlines()
    return lines[0] if lines else "no detail"


@app.command()
def push(
    grafana: Annotated[str, typer.Option(help="Base URL of Grafana, e.g. http://grafana:3000.")],
    token_file: Annotated[
        Path, typer.Option(help="File holding a Grafana service-account token.")
    ],
    folder: Annotated[str, typer.Option(help="Folder title (created when missing).")] = (
        "Control plane"
    ),
) -> None:
    """Create or overwrite every generated dashboard in Grafana."""
    from dashboards import build_all

    if not grafana.startswith(("http://", "https://")):
        raise DomainError(f"--grafana must be an http(s) URL, got {grafana!r}")
    api = _Grafana(grafana, _token(token_file))
    try:
        folder_uid = _folder_uid(api, folder)
        for model in build_all().values():
            # Matched by uid; an id from another Grafana would be refused.
            body = {**model, "id": None}
            answer = api.call(
                "POST",
                "/api/dashboards/db",
                {
                    "dashboard": body,
                    "folderUid": folder_uid,
                    "overwrite": True,
                    "message": "cplane dashboards push",
                },
            )
            print(f"{answer.get('uid')} version {answer.get('version')}: {answer.get('url')}")
    finally:
        api.close()
