"""The values that point botserver at gbdesk's backend, and writing them.

botserver reads ``LLM_URL``/``LLM_MODEL``/``LLM_KEY`` from its environment (.env), else the bot's
``llm-url``/``llm-model``/``llm-key``; ``llm-server,false`` stops it from starting its own
llama-server. The docs also show ``LLM_PROVIDER=llamacpp`` and ``LLM_API_URL``: written too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gbdesk.botserver import update_config_csv, update_env_file
from gbdesk.errors import GbdeskError, UsageError
from gbdesk.options import STARTER

_SECRET_KEYS = frozenset({"llm-key", "LLM_KEY"})


@dataclass(frozen=True)
class BotserverValues:
    """What goes into the bot's config.csv and into botserver's .env."""

    config_csv: dict[str, str]
    env: dict[str, str]


def backend_url(host: str, port: int) -> str:
    """The URL botserver uses; a wildcard listen address is reached through loopback."""
    if host in {"0.0.0.0", "::", ""}:
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def served_model_id(model: str) -> str:
    """The id /v1/models reports for ``model`` (its file name), or ``model`` itself."""
    from gbdesk.backend.serve import resolve_model

    try:
        return resolve_model(model).name
    except GbdeskError:
        return model


def backend_values(
    *, url: str | None = None, model: str = "", api_key: str | None = None
) -> BotserverValues:
    """The settings for botserver, from the arguments or else gbdesk's settings."""
    from gbdesk.settings import load_settings

    settings = load_settings()
    url = (url or backend_url(settings.backend_host, settings.backend_port)).rstrip("/")
    model_id = served_model_id(model or settings.model or STARTER)
    config = {
        "llm-url": url,
        "llm-model": model_id,
        "llm-server": "false",
        "llm-key": api_key or "none",
    }
    env = {"LLM_URL": url, "LLM_MODEL": model_id}
    if api_key:
        env["LLM_KEY"] = api_key
    env.update(LLM_PROVIDER="llamacpp", LLM_API_URL=url)
    return BotserverValues(config_csv=config, env=env)


def masked(values: Mapping[str, str]) -> dict[str, str]:
    """``values`` with the API key hidden (``none`` stays visible: it is not a secret)."""
    return {
        key: ("****" if key in _SECRET_KEYS and value not in {"", "none"} else value)
        for key, value in values.items()
    }


def bot_config_path(bot_dir: str | Path) -> Path:
    """The config.csv of a bot given its ``<bot>.gbai`` or ``<bot>.gbot`` folder (or the file).

    Raises:
        UsageError: the path is none of these.
    """
    path = Path(bot_dir).expanduser()
    if path.name == "config.csv":
        return path
    if path.suffix == ".gbot":
        return path / "config.csv"
    if path.suffix == ".gbai":
        return path / f"{path.stem}.gbot" / "config.csv"
    packages = sorted(path.glob("*.gbai")) if path.is_dir() else []
    if len(packages) == 1:
        return packages[0] / f"{packages[0].stem}.gbot" / "config.csv"
    raise UsageError(
        f"{path} is not a bot package folder (<bot>.gbai or <bot>.gbai/<bot>.gbot)",
        fix="pass --bot-dir path/to/default.gbai",
    )


def write_botserver_config(
    values: BotserverValues,
    *,
    config_csv: Path | None = None,
    env_file: str | Path | None = None,
) -> list[Path]:
    """Write the values into the files given; returns the files written.

    Raises:
        ConfigError: a file cannot be read or written.
    """
    written: list[Path] = []
    if config_csv is not None:
        update_config_csv(config_csv, values.config_csv)
        written.append(Path(config_csv))
    if env_file is not None:
        update_env_file(env_file, values.env)
        written.append(Path(env_file))
    return written
