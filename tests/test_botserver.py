"""botserver's .env and config.csv: changed keys only, everything else byte-for-byte."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gbdesk.botserver import (
    read_config_csv,
    read_env_file,
    update_config_csv,
    update_env_file,
)
from gbdesk.errors import ConfigError

ENV_TEXT = (
    "# botserver settings\n"
    "DATABASE_URL=postgres://gb:secret@localhost:5432/botserver\n"
    "\n"
    "export LLM_URL=http://old:8081   # the old server\n"
    "SPACED = 'kept as is'\n"
    "LLM_MODEL=old\n"
)


def test_env_replaces_in_place_appends_and_keeps_other_lines(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(ENV_TEXT)
    update_env_file(env, {"LLM_URL": "http://127.0.0.1:8081", "LLM_KEY": "k1", "LLM_MODEL": "m"})
    assert env.read_text() == (
        "# botserver settings\n"
        "DATABASE_URL=postgres://gb:secret@localhost:5432/botserver\n"
        "\n"
        "export LLM_URL=http://127.0.0.1:8081\n"
        "SPACED = 'kept as is'\n"
        "LLM_MODEL=m\n"
        "LLM_KEY=k1\n"
    )
    values = read_env_file(env)
    assert values["LLM_URL"] == "http://127.0.0.1:8081"
    assert values["SPACED"] == "kept as is"
    assert values["DATABASE_URL"] == "postgres://gb:secret@localhost:5432/botserver"


def test_env_keeps_crlf_missing_final_newline_and_mode(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_bytes(b"A=1\r\nB=2\r\nC=\xff3")  # CRLF, a non-UTF-8 byte, no final newline
    env.chmod(0o640)
    update_env_file(env, {"B": "two", "D": "4"})
    assert env.read_bytes() == b"A=1\r\nB=two\r\nC=\xff3\r\nD=4\r\n"
    assert stat.S_IMODE(env.stat().st_mode) == 0o640


def test_new_env_file_is_private_and_leaves_no_temp_files(tmp_path: Path) -> None:
    env = tmp_path / "sub" / ".env"
    update_env_file(env, {"DATABASE_URL": "postgresql://u:p w@h/db"})
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert read_env_file(env) == {"DATABASE_URL": "postgresql://u:p w@h/db"}
    assert [p.name for p in env.parent.iterdir()] == [".env"]


def test_env_rejects_bad_keys_and_leaves_file_alone(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(ENV_TEXT)
    with pytest.raises(ConfigError, match="not a valid environment variable"):
        update_env_file(env, {"LLM_URL": "x", "1BAD": "y"})
    assert env.read_text() == ENV_TEXT


@settings(max_examples=60, deadline=None)
@given(
    value=st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=40
    )
)
def test_env_values_round_trip(tmp_path_factory: pytest.TempPathFactory, value: str) -> None:
    env = tmp_path_factory.mktemp("env") / ".env"
    update_env_file(env, {"KEY": value, "OTHER": "x"})
    assert read_env_file(env) == {"KEY": value, "OTHER": "x"}


CSV_TEXT = (
    "name,value\n"
    "\n"
    "# LLM\n"
    "llm-url,http://localhost:8081/v1/chat/completions\n"
    "llm-server,true\n"
    "llm-server-ctx-size,4096\n"
    'theme-title,"Hello, world"\n'
)


def test_config_csv_replaces_in_place_and_appends(tmp_path: Path) -> None:
    config = tmp_path / "default.gbai" / "default.gbot" / "config.csv"
    config.parent.mkdir(parents=True)
    config.write_text(CSV_TEXT)
    update_config_csv(
        config, {"llm-server": "false", "llm-model": "smol", "llm-key": "a,b", "llm-url": "u"}
    )
    assert config.read_text() == (
        "name,value\n"
        "\n"
        "# LLM\n"
        "llm-url,u\n"
        "llm-server,false\n"
        "llm-server-ctx-size,4096\n"
        'theme-title,"Hello, world"\n'
        "llm-model,smol\n"
        'llm-key,"a,b"\n'
    )
    assert read_config_csv(config) == {
        "llm-url": "u",
        "llm-server": "false",
        "llm-server-ctx-size": "4096",
        "theme-title": "Hello, world",
        "llm-model": "smol",
        "llm-key": "a,b",
    }


def test_new_config_csv_gets_header_and_private_mode(tmp_path: Path) -> None:
    config = tmp_path / "config.csv"
    update_config_csv(config, {"llm-key": "secret"})
    assert config.read_text() == "name,value\nllm-key,secret\n"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600


def test_config_csv_rejects_line_breaks(tmp_path: Path) -> None:
    config = tmp_path / "config.csv"
    config.write_text(CSV_TEXT)
    with pytest.raises(ConfigError, match="line break"):
        update_config_csv(config, {"llm-url": "a\nb"})
    assert config.read_text() == CSV_TEXT
