"""Secrets (Hub token, the shard key): the OS keyring, or a 0600 file where none exists.

Secrets never go into the settings file or a log. On a desktop the OS keyring holds them
(Keychain, Windows Credential Locker, Secret Service). Headless Linux machines often have no
keyring; there the secret goes to ``secrets.json`` in the config folder, readable by its owner
only.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from gbdesk.atomic import write_json_atomic
from gbdesk.paths import AppPaths, app_paths

SERVICE = "gbdesk"
log = logging.getLogger(__name__)


def _keyring():
    """The keyring module when a real backend is available, else None."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return None
    try:
        backend = keyring.get_keyring()
    except Exception:  # a broken keyring configuration must not stop the app
        return None
    if isinstance(backend, fail.Keyring):
        return None
    return keyring


def _secrets_file(paths: AppPaths) -> Path:
    return paths.config_dir / "secrets.json"


def _read_file(paths: AppPaths) -> dict[str, str]:
    path = _secrets_file(paths)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        log.warning("the secrets file %s is unreadable; ignoring it", path)
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write_file(paths: AppPaths, data: dict[str, str]) -> None:
    write_json_atomic(_secrets_file(paths), data, mode=0o600)


def get_secret(name: str, *, paths: AppPaths | None = None) -> str | None:
    """The stored secret called ``name``, or None."""
    ring = _keyring()
    if ring is not None:
        try:
            value = ring.get_password(SERVICE, name)
        except Exception:
            log.warning("the OS keyring failed; falling back to the secrets file")
        else:
            if value is not None:
                return value
    return _read_file(paths or app_paths()).get(name)


def set_secret(name: str, value: str, *, paths: AppPaths | None = None) -> str:
    """Store a secret; returns where it went ("keyring" or the file's path).

    Raises:
        OSError: neither the keyring nor the config folder can be written.
    """
    ring = _keyring()
    if ring is not None:
        try:
            ring.set_password(SERVICE, name, value)
            return "keyring"
        except Exception:
            log.warning("the OS keyring refused the secret; using the secrets file")
    paths = paths or app_paths()
    data = _read_file(paths)
    data[name] = value
    _write_file(paths, data)
    return str(_secrets_file(paths))


def delete_secret(name: str, *, paths: AppPaths | None = None) -> None:
    """Forget a secret wherever it is stored."""
    ring = _keyring()
    if ring is not None:
        try:
            ring.delete_password(SERVICE, name)
        except Exception:
            log.debug("no %s in the keyring", name)
    paths = paths or app_paths()
    data = _read_file(paths)
    if data.pop(name, None) is not None:
        _write_file(paths, data)
