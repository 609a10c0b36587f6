"""``cplane dashboards push`` against a stand-in for Grafana.

No Grafana server can run here, so this test serves a stand-in (``http.server`` in a thread)
that mirrors the routes of Grafana's HTTP API the command uses, as Grafana documents them:

- ``GET /api/folders`` -> 200, ``[{"id", "uid", "title"}, ...]`` (Folder API, "Get all
  folders");
- ``POST /api/folders`` with ``{"title", "uid"?}`` -> 200 with the folder (``id``, ``uid``,
  ``title``, ``url``, ``version``...); 400 without a title; 409 when a folder with that title
  exists (Folder API, "Create folder");
- ``POST /api/dashboards/db`` with ``{"dashboard", "folderUid", "message", "overwrite"}`` ->
  200 ``{"id", "uid", "url", "status": "success", "version", "slug"}``; 400 without a
  dashboard title; 412 ``{"status": "name-exists" | "version-mismatch", "message"}`` when a
  dashboard with that uid exists and ``overwrite`` is false (Dashboard API, "Create / Update
  dashboard");
- every route: 401 ``{"message": "Unauthorized"}`` unless ``Authorization: Bearer <token>``
  carries the service-account token.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dashboards import build_all
from tests.fixtures.cli import Run
from tests.fixtures.engines import free_port

TOKEN = "glsa_test_token"


@dataclass
class GrafanaState:
    folders: list[dict[str, Any]] = field(default_factory=list)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _handler(state: GrafanaState) -> type[BaseHTTPRequestHandler]:
    class Grafana(BaseHTTPRequestHandler):
        def _send(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorized(self) -> bool:
            state.requests.append((self.command, self.path))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._send(401, {"message": "Unauthorized"})
                return False
            return True

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length", "0"))
            body: dict[str, Any] = json.loads(self.rfile.read(length) or b"{}")
            return body

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if not self._authorized():
                return
            if self.path.split("?")[0] == "/api/folders":
                self._send(200, [{k: f[k] for k in ("id", "uid", "title")} for f in state.folders])
            else:
                self._send(404, {"message": "Not found"})

        def do_POST(self) -> None:  # noqa: N802
            if not self._authorized():
                return
            body = self._body()
            if self.path == "/api/folders":
                title = body.get("title")
                if not title:
                    self._send(400, {"message": "folder title cannot be empty"})
                    return
                if any(f["title"] == title for f in state.folders):
                    self._send(409, {"message": "a folder with the same name already exists"})
                    return
                uid = body.get("uid") or f"f{len(state.folders) + 1:08d}"
                folder = {
                    "id": len(state.folders) + 1,
                    "uid": uid,
                    "title": title,
                    "url": f"/dashboards/f/{uid}/{_slug(title)}",
                    "hasAcl": False,
                    "canSave": True,
                    "canEdit": True,
                    "canAdmin": True,
                    "version": 1,
                }
                state.folders.append(folder)
                self._send(200, folder)
            elif self.path == "/api/dashboards/db":
                board = body.get("dashboard") or {}
                if not board.get("title"):
                    self._send(400, {"message": "Dashboard title cannot be empty"})
                    return
                uid = board["uid"]
                old = state.dashboards.get(uid)
                if old is not None and not body.get("overwrite"):
                    self._send(
                        412,
                        {
                            "status": "name-exists",
                            "message": "A dashboard with the same uid already exists",
                        },
                    )
                    return
                version = 1 if old is None else old["dashboard"]["version"] + 1
                number = len(state.dashboards) + 1 if old is None else old["dashboard"]["id"]
                state.dashboards[uid] = {
                    "dashboard": {**board, "id": number, "version": version},
                    "folderUid": body.get("folderUid"),
                    "message": body.get("message"),
                }
                slug = _slug(board["title"])
                self._send(
                    200,
                    {
                        "id": number,
                        "uid": uid,
                        "url": f"/d/{uid}/{slug}",
                        "status": "success",
                        "version": version,
                        "slug": slug,
                    },
                )
            else:
                self._send(404, {"message": "Not found"})

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Grafana


@pytest.fixture
def grafana() -> Iterator[tuple[str, GrafanaState]]:
    state = GrafanaState()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()
    server.server_close()


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    return Run(capsys)


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "grafana.token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o600)
    return path


def test_push_creates_folder_and_dashboards_then_overwrites(
    grafana: tuple[str, GrafanaState], token_file: Path, run: Run
) -> None:
    url, state = grafana
    expected = {m["uid"]: m for m in build_all().values()}

    code, out, err = run("dashboards", "push", "--grafana", url, "--token-file", str(token_file))
    assert code == 0, err
    assert [f["title"] for f in state.folders] == ["Control plane"]
    folder_uid = state.folders[0]["uid"]
    assert set(state.dashboards) == set(expected)
    for uid, stored in state.dashboards.items():
        assert stored["folderUid"] == folder_uid
        assert stored["dashboard"]["version"] == 1
        sent = {k: v for k, v in stored["dashboard"].items() if k not in ("id", "version")}
        assert sent == {k: v for k, v in expected[uid].items() if k not in ("id", "version")}
    assert len(out.splitlines()) == len(expected) and "version 1" in out

    # Again: the folder is found by title (not created twice), every dashboard overwritten.
    code, out, err = run("dashboards", "push", "--grafana", url, "--token-file", str(token_file))
    assert code == 0, err
    assert len(state.folders) == 1
    assert all(d["dashboard"]["version"] == 2 for d in state.dashboards.values())
    assert "version 2" in out


def test_push_into_a_named_existing_folder(
    grafana: tuple[str, GrafanaState], token_file: Path, run: Run
) -> None:
    url, state = grafana
    state.folders.append({"id": 7, "uid": "ops-uid", "title": "Ops", "version": 1})
    code, _, err = run(
        "dashboards", "push", "--grafana", url, "--token-file", str(token_file), "--folder", "Ops"
    )
    assert code == 0, err
    assert len(state.folders) == 1
    assert {d["folderUid"] for d in state.dashboards.values()} == {"ops-uid"}


def test_wrong_token_is_one_line_exit_2_and_nothing_stored(
    grafana: tuple[str, GrafanaState], tmp_path: Path, run: Run
) -> None:
    url, state = grafana
    bad = tmp_path / "bad.token"
    bad.write_text("not-the-token")
    code, out, err = run("dashboards", "push", "--grafana", url, "--token-file", str(bad))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "401" in err, err
    assert state.requests and not state.dashboards and not state.folders
    assert "not-the-token" not in err


def test_unreachable_grafana_is_one_line_exit_2(token_file: Path, run: Run) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, _, err = run("dashboards", "push", "--grafana", url, "--token-file", str(token_file))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "unreachable" in err, err


def test_missing_token_file_is_one_line_exit_2(
    grafana: tuple[str, GrafanaState], tmp_path: Path, run: Run
) -> None:
    url, state = grafana
    missing = tmp_path / "nope.token"
    code, _, err = run("dashboards", "push", "--grafana", url, "--token-file", str(missing))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "nope.token" in err, err
    assert not state.requests


def test_url_that_is_not_http_is_one_line_exit_2(token_file: Path, run: Run) -> None:
    code, _, err = run(
        "dashboards", "push", "--grafana", "grafana:3000", "--token-file", str(token_file)
    )
    assert code == 2 and len(err.strip().splitlines()) == 1, err
