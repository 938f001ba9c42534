"""botserver's files stay true to the served model: the files gbdesk wrote are remembered, and
serving another model rewrites the model they name (and nothing else)."""

from __future__ import annotations

import shutil
from pathlib import Path

from gbdesk.backend.botserver_link import sync_served_model
from gbdesk.botserver import read_config_csv, read_env_file
from gbdesk.cli import main
from gbdesk.settings import load_settings

BOT_CSV = "name,value\nllm-url,http://old:8081\ntheme-color,blue\n"
ENV = "# botserver\nDATABASE_URL=postgres://u:p@h/db\n"


def _write_botserver_files(tmp_path: Path, model: Path) -> tuple[Path, Path]:
    bot = tmp_path / "default.gbai"
    config = bot / "default.gbot" / "config.csv"
    config.parent.mkdir(parents=True)
    config.write_text(BOT_CSV)
    env = tmp_path / ".env"
    env.write_text(ENV)
    args = ["botserver-config", "--bot-dir", str(bot), "--env-file", str(env)]
    assert main([*args, "--model", str(model)]) == 0
    return config, env


def test_the_files_gbdesk_writes_follow_the_served_model(
    starter_model: Path, tmp_path: Path
) -> None:
    config, env = _write_botserver_files(tmp_path, starter_model)
    settings = load_settings()
    assert settings.botserver_config_csv == str(config.resolve())
    assert settings.botserver_env_file == str(env.resolve())

    other = shutil.copy(starter_model, tmp_path / "another-model.Q4_1.gguf")
    before_csv, before_env = read_config_csv(config), read_env_file(env)
    result = sync_served_model(str(other))
    assert result.model_id == "another-model.Q4_1.gguf"
    assert set(result.updated) == {config.resolve(), env.resolve()} and not result.missing
    assert read_config_csv(config) == {**before_csv, "llm-model": "another-model.Q4_1.gguf"}
    assert read_env_file(env) == {**before_env, "LLM_MODEL": "another-model.Q4_1.gguf"}
    assert env.read_text().startswith("# botserver\nDATABASE_URL=postgres://u:p@h/db\n")

    again = sync_served_model(str(other))  # already true: nothing written
    assert again.updated == () and set(again.already) == {config.resolve(), env.resolve()}

    env.unlink()  # a file that is gone is reported, never created again
    gone = sync_served_model(str(starter_model))
    assert gone.missing == (env.resolve(),) and gone.updated == (config.resolve(),)
    assert not env.exists()
    assert read_config_csv(config)["llm-model"] == starter_model.name


def test_nothing_is_touched_when_gbdesk_never_wrote_botserver_files(starter_model: Path) -> None:
    result = sync_served_model(str(starter_model))
    assert result.updated == result.already == result.missing == ()
