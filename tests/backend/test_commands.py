"""`gbdesk serve` load errors and `gbdesk botserver-config`, through the real CLI."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gbdesk.backend.errors import ModelLoadError
from gbdesk.backend.model import validate_model_file
from gbdesk.botserver import read_config_csv, read_env_file
from gbdesk.cli import main


def test_truncated_and_foreign_files_are_refused_before_llama_cpp(
    starter_model: Path, tmp_path: Path
) -> None:
    truncated = tmp_path / "half.gguf"
    with open(starter_model, "rb") as source:
        truncated.write_bytes(source.read(3_000_000))
    with pytest.raises(ModelLoadError, match="truncated"):
        validate_model_file(truncated)
    text = tmp_path / "notes.gguf"
    text.write_text("hello, I am not a model\n" * 10)
    with pytest.raises(ModelLoadError, match="cannot load the model"):
        validate_model_file(text)


@pytest.mark.parametrize("name", ["missing.gguf", "half.gguf"])
def test_serve_reports_a_bad_model_with_exit_status(
    starter_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture, name: str
) -> None:
    with open(starter_model, "rb") as source:
        (tmp_path / "half.gguf").write_bytes(source.read(1_000_000))
    code = main(["serve", "--model", str(tmp_path / name), "--port", "0", "--gpu-layers", "0"])
    assert code == 3
    err = capsys.readouterr().err
    assert err.startswith("error: cannot load the model")
    assert "fix:" in err
    assert "Traceback" not in err


BOT_CSV = "name,value\nllm-url,http://old:8081\nllm-server,true\ntheme-color,blue\n"
ENV = "# botserver\nDATABASE_URL=postgres://u:p@h/db\nLLM_URL=http://old:8081\n"


def test_botserver_config_writes_and_round_trips(
    starter_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    bot = tmp_path / "default.gbai"
    config = bot / "default.gbot" / "config.csv"
    config.parent.mkdir(parents=True)
    config.write_text(BOT_CSV)
    env = tmp_path / ".env"
    env.write_text(ENV)
    key = "sk-botserver-key-42"
    args = ["botserver-config", "--bot-dir", str(bot), "--env-file", str(env)]
    assert main([*args, "--model", str(starter_model), "--api-key", key]) == 0
    assert read_config_csv(config) == {
        "llm-url": "http://127.0.0.1:8081",
        "llm-server": "false",
        "theme-color": "blue",
        "llm-model": starter_model.name,
        "llm-key": key,
    }
    assert read_env_file(env) == {
        "DATABASE_URL": "postgres://u:p@h/db",
        "LLM_URL": "http://127.0.0.1:8081",
        "LLM_MODEL": starter_model.name,
        "LLM_KEY": key,
        "LLM_PROVIDER": "llamacpp",
        "LLM_API_URL": "http://127.0.0.1:8081",
    }
    assert env.read_text().startswith("# botserver\nDATABASE_URL=postgres://u:p@h/db\n")
    assert "wrote" in capsys.readouterr().out

    assert main(["botserver-config", "--print", "--api-key", key, "--url", "http://h:9"]) == 0
    shown = capsys.readouterr().out
    assert key not in shown
    assert "llm-key,****" in shown
    assert "LLM_URL=http://h:9" in shown


def test_botserver_config_without_key_writes_none(tmp_path: Path) -> None:
    config = tmp_path / "bot.gbai" / "bot.gbot" / "config.csv"
    assert main(["botserver-config", "--bot-dir", str(config.parent.parent)]) == 0
    assert read_config_csv(config)["llm-key"] == "none"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600


def test_botserver_config_needs_a_target(capsys: pytest.CaptureFixture) -> None:
    assert main(["botserver-config"]) == 2
    assert "--bot-dir" in capsys.readouterr().err


def test_botserver_config_writes_the_embeddings_server(
    starter_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "kb.gbai" / "kb.gbot" / "config.csv"
    bot = str(config.parent.parent)
    assert (
        main(["botserver-config", "--bot-dir", bot, "--embedding-model", str(starter_model)]) == 0
    )
    values = read_config_csv(config)
    assert values["embedding-url"] == "http://127.0.0.1:8082/v1/embeddings"  # the full URL
    assert values["embedding-model"] == starter_model.name
    assert values["embedding-dimensions"] == "576"  # SmolLM2-135M's embedding length
    assert values["embedding-key"] == "none"
    # From the settings (here their environment override), as the GUI-started backend uses.
    monkeypatch.setenv("GBDESK_EMBEDDING_MODEL", str(starter_model))
    monkeypatch.setenv("GBDESK_EMBEDDING_PORT", "9082")
    other = tmp_path / "other.gbai" / "other.gbot" / "config.csv"
    assert main(["botserver-config", "--bot-dir", str(other.parent.parent)]) == 0
    assert read_config_csv(other)["embedding-url"] == "http://127.0.0.1:9082/v1/embeddings"
    # And "" turns it off.
    bare = tmp_path / "bare.gbai" / "bare.gbot" / "config.csv"
    assert (
        main(["botserver-config", "--bot-dir", str(bare.parent.parent), "--embedding-model", ""])
        == 0
    )
    assert "embedding-url" not in read_config_csv(bare)
