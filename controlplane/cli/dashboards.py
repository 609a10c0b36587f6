"""``cplane dashboards push``: upload the generated Grafana dashboards (``dashboards/``)
through Grafana's HTTP API, into a folder found or created by title, overwriting the
previous version of each dashboard (stable uids, so a push is repeatable)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from typing import Annotated
from typing import Any

import typer

from controlplane.domain import DomainError

if TYPE_CHECKING:  # imported when pushing: grafana-client costs every other command 0.2 s
    from grafana_client.api import GrafanaApi
    from grafana_client.client import GrafanaException

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


def _folder_uid(api: GrafanaApi, title: str) -> str:
    """The uid of the folder titled ``title``, created when there is none."""
    folders: list[dict[str, Any]] = api.folder.get_all_folders()
    for folder in folders:
        if folder.get("title") == title:
            return str(folder["uid"])
    created: dict[str, Any] = api.folder.create_folder(title)
    return str(created["uid"])


def _describe(exc: GrafanaException) -> str:
    from grafana_client.client import GrafanaUnauthorizedError

    if isinstance(exc, GrafanaUnauthorizedError):
        return "Grafana refused the token (401): check --token-file"
    if exc.status_code == 0:  # no HTTP answer: connection refused, DNS, timeout
        return f"Grafana unreachable: {_first_line(exc.message)}"
    return f"Grafana answered {exc.status_code}: {_first_line(exc.message)}"


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
    import niquests
    from grafana_client.api import GrafanaApi
    from grafana_client.client import GrafanaException
    from grafana_client.client import TokenAuth

    from dashboards import build_all

    if not grafana.startswith(("http://", "https://")):
        raise DomainError(f"--grafana must be an http(s) URL, got {grafana!r}")
    api = GrafanaApi.from_url(
        grafana, credential=TokenAuth(_token(token_file)), timeout=PUSH_TIMEOUT_S
    )
    try:
        folder_uid = _folder_uid(api, folder)
        for model in build_all().values():
            # Matched by uid; an id from another Grafana would be refused.
            body = {**model, "id": None}
            answer: dict[str, Any] = api.dashboard.update_dashboard(
                {
                    "dashboard": body,
                    "folderUid": folder_uid,
                    "overwrite": True,
                    "message": "cplane dashboards push",
                }
            )
            print(f"{answer.get('uid')} version {answer.get('version')}: {answer.get('url')}")
    except GrafanaException as exc:
        raise DomainError(_describe(exc)) from None
    except niquests.exceptions.RequestException as exc:  # grafana-client passes these through
        raise DomainError(f"Grafana unreachable: {_first_line(exc)}") from None
