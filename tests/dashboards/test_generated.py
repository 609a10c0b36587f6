"""The committed dashboard JSON is what the builders generate now, and every panel queries
through the dashboards' datasource variable."""

from __future__ import annotations

from pathlib import Path

from dashboards import build_all
from dashboards import render
from dashboards.build import DEFAULT_DIR
from dashboards.build import main
from dashboards.build import stale_files


def test_committed_json_is_up_to_date() -> None:
    assert stale_files(DEFAULT_DIR) == [], "stale dashboards/json: run `make dashboards`"
    committed = {p.stem for p in DEFAULT_DIR.glob("*.json")}
    assert committed == set(build_all()), "dashboards/json holds files no builder makes"


def test_check_mode_flags_a_stale_file(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path)]) == 0
    assert main(["--out", str(tmp_path), "--check"]) == 0
    (tmp_path / "gpu.json").write_text(render({"title": "edited by hand"}))
    assert main(["--out", str(tmp_path), "--check"]) == 1
    assert stale_files(tmp_path) == ["gpu.json"]


def test_panels_have_ids_fit_the_grid_and_use_the_datasource_variable() -> None:
    models = build_all().values()
    uids = [m["uid"] for m in models]
    assert len(set(uids)) == len(uids)
    for model in models:
        names = [v["name"] for v in model["templating"]["list"]]
        assert "datasource" in names
        ids = [panel["id"] for panel in model["panels"]]
        assert len(set(ids)) == len(ids)
        for panel in model["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, f"{model['uid']}/{panel['title']} overflows"
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"], f"{model['uid']}/{panel['title']} has no query"
