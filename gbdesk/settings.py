"""One typed settings object, stored as JSON in the config folder.

Values come from, in order of strength: the ``GBDESK_<FIELD>`` environment variable, the
settings file, the defaults. Every field, its type, range, default and help are declared once in
:mod:`gbdesk.options`; a save writes only what differs from what was loaded (an environment
override never ends up in the file). Secrets (Hub token, database password) are never stored
here: they live in the OS keyring (see :mod:`gbdesk.secrets`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from gbdesk.atomic import write_json_atomic
from gbdesk.errors import ConfigError
from gbdesk.options import ENV_PREFIX, option, validate
from gbdesk.paths import AppPaths, app_paths

__all__ = ["ENV_PREFIX", "Settings", "load_settings", "save_settings"]


def _default(name: str) -> Any:
    return option(name).default


@dataclass(frozen=True)
class Settings:
    """Everything a person can configure (see :data:`gbdesk.options.OPTIONS` for the help of
    each field). Frozen: use :meth:`replace` to change a copy."""

    models_dir: str = _default("models_dir")
    hub_endpoint: str = _default("hub_endpoint")
    backend_host: str = _default("backend_host")
    backend_port: int = _default("backend_port")
    context_length: int = _default("context_length")
    parallel: int = _default("parallel")
    gpu_layers: str = _default("gpu_layers")
    threads: int = _default("threads")
    queue_limit: int = _default("queue_limit")
    alias: str = _default("alias")
    repack: bool | None = _default("repack")
    model: str = _default("model")
    reasoning_format: str = _default("reasoning_format")
    embedding_model: str = _default("embedding_model")
    embedding_port: int = _default("embedding_port")
    embedding_ctx: int = _default("embedding_ctx")
    embedding_pooling: str = _default("embedding_pooling")
    rpc_workers: str = _default("rpc_workers")
    worker_host: str = _default("worker_host")
    worker_port: int = _default("worker_port")
    worker_memory_mib: int = _default("worker_memory_mib")
    start_backend_at_login: bool = _default("start_backend_at_login")
    resume_backend: bool = _default("resume_backend")
    botserver_config_csv: str = _default("botserver_config_csv")
    botserver_env_file: str = _default("botserver_env_file")
    database_url: str = _default("database_url")
    first_run_done: bool = _default("first_run_done")

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _read_file(paths: AppPaths) -> dict[str, Any]:
    """The settings file's raw object ({} when there is none).

    Raises:
        ConfigError: the file is not valid JSON or not an object.
    """
    if not paths.settings_file.exists():
        return {}
    try:
        stored = json.loads(paths.settings_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"cannot read the settings file {paths.settings_file}: {exc}",
            fix="fix the JSON or delete the file to go back to the defaults",
        ) from exc
    if not isinstance(stored, dict):
        raise ConfigError(
            f"the settings file {paths.settings_file} does not hold a JSON object",
            fix="delete the file to go back to the defaults",
        )
    return stored


def load_settings(paths: AppPaths | None = None) -> Settings:
    """Read the settings file and the environment.

    Raises:
        ConfigError: the file is not valid JSON or a value has the wrong type or range.
    """
    paths = paths or app_paths()
    result = validate(_read_file(paths), str(paths.settings_file))
    environment = {
        field.name: os.environ[option(field.name).env]
        for field in fields(Settings)
        if option(field.name).env in os.environ
    }
    result.update(validate(environment, "the environment"))
    return Settings(**result)


def save_settings(settings: Settings, paths: AppPaths | None = None) -> Path:
    """Write what the person changed atomically (a reader never sees half a file).

    Only fields that differ from what :func:`load_settings` gives now are written, on top of
    what the file already holds: a value that came from a ``GBDESK_*`` environment variable
    (and was not changed) never ends up in the file.

    Raises:
        OSError: the config folder cannot be written.
        ConfigError: the current file or environment cannot be read.
    """
    paths = (paths or app_paths()).ensure()
    stored = _read_file(paths)
    current = load_settings(paths).to_json()
    wanted = settings.to_json()
    stored.update({name: value for name, value in wanted.items() if value != current[name]})
    write_json_atomic(paths.settings_file, stored)
    return paths.settings_file
