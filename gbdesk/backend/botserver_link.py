"""The values that point botserver at gbdesk's backend, and writing them.

botserver reads ``LLM_URL``/``LLM_MODEL``/``LLM_KEY`` from its environment (.env), else the bot's
``llm-url``/``llm-model``/``llm-key``; ``llm-server,false`` stops it from starting its own
llama-server. The docs also show ``LLM_PROVIDER=llamacpp`` and ``LLM_API_URL``: written too.

With an embedding model, the knowledge base's ``embedding-url`` (the full ``/v1/embeddings``
URL: botserver posts to the URL as written), ``embedding-model`` and ``embedding-dimensions``
(the model's vector length, so that Qdrant's collections match it) go into config.csv too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gbdesk.botserver import update_config_csv, update_env_file
from gbdesk.errors import ConfigError, GbdeskError, UsageError, os_error_words
from gbdesk.options import STARTER

_SECRET_KEYS = frozenset({"llm-key", "LLM_KEY", "embedding-key"})


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


def embedding_dimensions(model: str) -> int:
    """The vector length of an embedding model (``<arch>.embedding_length`` in its GGUF).

    Raises:
        ModelLoadError: the model cannot be found.
        GGUFError: its file is not a readable GGUF.
        UsageError: the file does not say its embedding length.
    """
    from gbdesk.backend.serve import resolve_model
    from gbdesk.gguf import read_gguf

    path = resolve_model(model)
    value = read_gguf(path).arch_value("embedding_length")
    if not isinstance(value, int) or value <= 0:
        raise UsageError(
            f"{path.name} does not say its embedding length",
            fix="pick another embedding model (for example bge-small-en-v1.5)",
        )
    return value


def backend_values(
    *,
    url: str | None = None,
    model: str = "",
    api_key: str | None = None,
    embedding_model: str | None = None,
    embedding_url: str | None = None,
    dimensions: int | None = None,
) -> BotserverValues:
    """The settings for botserver, from the arguments or else gbdesk's settings.

    ``embedding_model`` None means the ``embedding_model`` setting; "" means none.
    ``dimensions`` (the embedding model's vector length) None reads the model's GGUF on this
    machine (another machine's model: pass the length its node recorded).

    Raises:
        GbdeskError: the embedding model cannot be found or read.
    """
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
    embedder = settings.embedding_model if embedding_model is None else embedding_model
    if embedder:
        config["embedding-url"] = (
            embedding_url.rstrip("/")
            if embedding_url
            else backend_url(settings.backend_host, settings.embedding_port) + "/v1/embeddings"
        )
        config["embedding-model"] = served_model_id(embedder)
        config["embedding-dimensions"] = str(
            dimensions if dimensions is not None else embedding_dimensions(embedder)
        )
        config["embedding-key"] = api_key or "none"
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
    remember: bool = True,
) -> list[Path]:
    """Write the values into the files given; returns the files written.

    With ``remember`` their paths are kept in the settings (``botserver_config_csv``,
    ``botserver_env_file``), so that serving another model later rewrites the model they name
    (:func:`sync_served_model`) instead of leaving botserver on the old one.

    Raises:
        ConfigError: a file cannot be read or written, or the settings cannot be saved.
    """
    written: list[Path] = []
    if config_csv is not None:
        update_config_csv(config_csv, values.config_csv)
        written.append(Path(config_csv))
    if env_file is not None:
        update_env_file(env_file, values.env)
        written.append(Path(env_file))
    if remember and written:
        _remember(config_csv, env_file)
    return written


def _remember(config_csv: Path | None, env_file: str | Path | None) -> None:
    from gbdesk.settings import load_settings, save_settings

    settings = load_settings()
    changes: dict[str, str] = {}
    if config_csv is not None:
        changes["botserver_config_csv"] = str(Path(config_csv).expanduser().resolve())
    if env_file is not None:
        changes["botserver_env_file"] = str(Path(env_file).expanduser().resolve())
    try:
        save_settings(settings.replace(**changes))
    except OSError as exc:
        raise ConfigError(
            f"botserver's files were written, but gbdesk cannot remember where: "
            f"{os_error_words(exc)}",
            fix="check that gbdesk's config folder is writable",
        ) from exc


def forget_botserver_files(config_csv: Path | None, env_file: str | Path | None) -> None:
    """Stop keeping these files in line with this machine's served model: they now point at
    another machine's backend (tenant routing), whose model this machine must not overwrite.

    Raises:
        ConfigError: the settings cannot be saved.
    """
    from gbdesk.settings import load_settings, save_settings

    settings = load_settings()
    changes: dict[str, str] = {}
    for field_name, path in (
        ("botserver_config_csv", config_csv),
        ("botserver_env_file", env_file),
    ):
        remembered = getattr(settings, field_name)
        if (
            path is not None
            and remembered
            and (Path(remembered) == Path(path).expanduser().resolve())
        ):
            changes[field_name] = ""
    if not changes:
        return
    try:
        save_settings(settings.replace(**changes))
    except OSError as exc:
        raise ConfigError(
            f"gbdesk cannot update its settings: {os_error_words(exc)}",
            fix="check that gbdesk's config folder is writable",
        ) from exc


@dataclass(frozen=True)
class ModelSync:
    """What :func:`sync_served_model` did to botserver's files."""

    model_id: str  # what they name now
    updated: tuple[Path, ...]  # files that named another model and were rewritten
    already: tuple[Path, ...]  # files that named it already
    missing: tuple[Path, ...]  # remembered files that are gone (left alone)


def sync_served_model(model: str) -> ModelSync:
    """Make botserver's remembered files (see :func:`write_botserver_config`) name ``model``,
    the model the backend now serves: ``llm-model`` in the bot's config.csv, ``LLM_MODEL`` in
    botserver's .env. Only that key changes; a file that is gone is reported, not created.

    Raises:
        ConfigError: a file cannot be read or written.
    """
    from gbdesk.botserver import read_config_csv, read_env_file
    from gbdesk.settings import load_settings

    settings = load_settings()
    model_id = served_model_id(model or STARTER)
    updated: list[Path] = []
    already: list[Path] = []
    missing: list[Path] = []
    targets = (
        (settings.botserver_config_csv, "llm-model", read_config_csv, update_config_csv),
        (settings.botserver_env_file, "LLM_MODEL", read_env_file, update_env_file),
    )
    for name, key, read, update in targets:
        if not name:
            continue
        path = Path(name)
        if not path.is_file():
            missing.append(path)
        elif read(path).get(key) == model_id:
            already.append(path)
        else:
            update(path, {key: model_id})
            updated.append(path)
    return ModelSync(model_id, tuple(updated), tuple(already), tuple(missing))
