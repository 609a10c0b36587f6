from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from controlplane.settings import Settings
from controlplane.settings import settings_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_environment_prefix_and_nested_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CP_DATABASE_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("CP_API__PORT", "9123")
    settings = Settings()
    assert settings.resolved_database_url == "postgresql+psycopg://u@h/db"
    assert settings.api.port == 9123


def test_default_store_is_sqlite_under_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'controlplane.db'}"


def test_bad_values_are_refused_naming_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CP_API__PORT", "70000")
    with pytest.raises(ValidationError) as info:
        Settings()
    assert info.value.errors()[0]["loc"] == ("api", "port")


def test_unknown_setting_is_an_error() -> None:
    with pytest.raises(ValidationError):
        Settings(databse_url="typo")  # type: ignore[call-arg]


def test_settings_reference_is_current() -> None:
    """docs/settings.md is generated; regenerate with `make docs` when this fails."""
    assert (ROOT / "docs" / "settings.md").read_text() == settings_markdown()
