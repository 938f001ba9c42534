"""Where gbdesk keeps its files.

The platform's usual locations (platformdirs) by default. ``GBDESK_HOME`` moves every one of
them under a single folder, which tests use so that they never touch a real home.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "gbdesk"
HOME_ENV = "GBDESK_HOME"


@dataclass(frozen=True)
class AppPaths:
    """The folders gbdesk writes to. Create them with :meth:`ensure`."""

    config_dir: Path
    data_dir: Path
    cache_dir: Path
    log_dir: Path

    @property
    def settings_file(self) -> Path:
        return self.config_dir / "settings.json"

    @property
    def models_dir(self) -> Path:
        """Imported GGUF files (downloads go to the Hugging Face cache)."""
        return self.data_dir / "models"

    @property
    def database_dir(self) -> Path:
        """The embedded PostgreSQL's data folder."""
        return self.data_dir / "postgres"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "gbdesk.log"

    def ensure(self) -> AppPaths:
        """Create the folders that do not exist yet and return self."""
        for folder in (self.config_dir, self.data_dir, self.cache_dir, self.log_dir):
            folder.mkdir(parents=True, exist_ok=True)
        return self


def app_paths() -> AppPaths:
    """The folders for this user, honouring ``GBDESK_HOME``."""
    home = os.environ.get(HOME_ENV)
    if home:
        root = Path(home).expanduser()
        return AppPaths(
            config_dir=root / "config",
            data_dir=root / "data",
            cache_dir=root / "cache",
            log_dir=root / "logs",
        )
    return AppPaths(
        config_dir=Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
        data_dir=Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
        cache_dir=Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)),
        log_dir=Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)),
    )
