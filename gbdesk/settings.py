"""One typed settings object, stored as JSON in the config folder.

Values come from, in order of strength: the ``GBDESK_<FIELD>`` environment variable, the
settings file, the defaults below. Secrets (Hub token, database password) are never stored here:
they live in the OS keyring (see :mod:`gbdesk.secrets`).
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
from gbdesk.paths import AppPaths, app_paths

ENV_PREFIX = "GBDESK_"


@dataclass(frozen=True)
class Settings:
    """Everything a person can configure. Frozen: use :meth:`replace` to change a copy."""

    # Where imported GGUF files are copied; empty means the data folder's models/.
    models_dir: str = ""
    # Hugging Face endpoint (a mirror such as https://hf-mirror.com); empty means HF_ENDPOINT
    # or huggingface.co.
    hub_endpoint: str = ""
    # The bot backend.
    backend_host: str = "127.0.0.1"
    backend_port: int = 8081
    context_length: int = 0  # 0: chosen by the estimator
    parallel: int = 0  # 0: chosen by the estimator
    gpu_layers: str = "auto"  # "auto" or a number of layers
    threads: int = 0  # 0: physical cores
    model: str = ""  # catalogue id, "repo/file" or a path of the model to serve
    start_backend_at_login: bool = False
    # The shard registry: empty means the embedded PostgreSQL.
    database_url: str = ""
    first_run_done: bool = False

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(name: str, kind: type, raw: Any, origin: str) -> Any:
    """Turn a raw file or environment value into the field's type."""
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(text)
        if kind is int:
            if isinstance(raw, bool):
                raise ValueError(raw)
            return int(raw)
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"setting {name!r} from {origin} has the value {raw!r}, which is not a {kind.__name__}",
            fix=f"correct or remove it in {origin}",
        ) from exc


_TYPES = {"str": str, "int": int, "bool": bool}


def load_settings(paths: AppPaths | None = None) -> Settings:
    """Read the settings file and the environment.

    Raises:
        ConfigError: the file is not valid JSON or a value has the wrong type.
    """
    paths = paths or app_paths()
    values: dict[str, Any] = {}
    if paths.settings_file.exists():
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
        values.update(stored)
    result: dict[str, Any] = {}
    for field in fields(Settings):
        kind = _TYPES[field.type] if isinstance(field.type, str) else field.type
        env_value = os.environ.get(ENV_PREFIX + field.name.upper())
        if env_value is not None:
            result[field.name] = _coerce(field.name, kind, env_value, "the environment")
        elif field.name in values:
            result[field.name] = _coerce(
                field.name, kind, values[field.name], str(paths.settings_file)
            )
    return Settings(**result)


def save_settings(settings: Settings, paths: AppPaths | None = None) -> Path:
    """Write the settings file atomically (a reader never sees half a file).

    Raises:
        OSError: the config folder cannot be written.
    """
    paths = (paths or app_paths()).ensure()
    write_json_atomic(paths.settings_file, settings.to_json())
    return paths.settings_file
