from __future__ import annotations

import json

import pytest

from gbdesk.errors import ConfigError
from gbdesk.paths import app_paths
from gbdesk.settings import Settings, load_settings, save_settings


def test_gbdesk_home_moves_every_folder(gbdesk_home) -> None:
    paths = app_paths()
    for folder in (paths.config_dir, paths.data_dir, paths.cache_dir, paths.log_dir):
        assert gbdesk_home in folder.parents


def test_defaults_then_file_then_environment(monkeypatch) -> None:
    assert load_settings() == Settings()
    save_settings(Settings(backend_port=9001, start_backend_at_login=True))
    assert load_settings().backend_port == 9001
    monkeypatch.setenv("GBDESK_BACKEND_PORT", "9100")
    monkeypatch.setenv("GBDESK_START_BACKEND_AT_LOGIN", "no")
    loaded = load_settings()
    assert loaded.backend_port == 9100
    assert loaded.start_backend_at_login is False


def test_save_is_atomic_and_leaves_no_temporary_files() -> None:
    target = save_settings(Settings(model="x"))
    assert [p.name for p in target.parent.iterdir()] == ["settings.json"]
    assert json.loads(target.read_text())["model"] == "x"


def test_bad_file_and_bad_values_say_what_to_do(monkeypatch) -> None:
    paths = app_paths().ensure()
    paths.settings_file.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot read the settings file") as info:
        load_settings()
    assert "delete the file" in (info.value.fix or "")
    paths.settings_file.write_text('{"backend_port": "eighty"}', encoding="utf-8")
    with pytest.raises(ConfigError, match="backend_port"):
        load_settings()
    paths.settings_file.unlink()
    monkeypatch.setenv("GBDESK_BACKEND_PORT", "true")
    with pytest.raises(ConfigError, match="the environment"):
        load_settings()
