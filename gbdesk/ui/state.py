"""What the wizard and the main window share: settings, the machine's profile, the backend.

One :class:`AppState` lives for the whole app. Pages read from it and listen to its signals
instead of talking to each other.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from gbdesk.errors import GbdeskError
from gbdesk.paths import app_paths
from gbdesk.settings import Settings, load_settings, save_settings

log = logging.getLogger(__name__)

BACKEND_KEY_SECRET = "backend_api_key"


class AppState(QObject):
    """Settings (saved on every change), the last hardware profile, and shared services."""

    settings_changed = Signal(object)
    profile_changed = Signal(object)

    def __init__(self, settings: Settings | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings_error: GbdeskError | None = None
        if settings is None:
            try:
                settings = load_settings()
            except GbdeskError as exc:  # a broken settings file must not stop the app
                log.warning("settings unreadable, using defaults: %s", exc.message)
                self.settings_error = exc
                settings = Settings()
        self._settings = settings
        self.profile: Any = None  # gbdesk.hardware.profile.HardwareProfile once probed
        self._backend: Any = None
        self._heartbeat: Any = None
        self._downloads: Any = None
        # Set (from any thread) when this app started gbdesk's embedded PostgreSQL: Quit stops it.
        self.embedded_started_here = False

    def note_embedded_started(self) -> None:
        """The embedded PostgreSQL was started by this app (registration or heartbeat)."""
        self.embedded_started_here = True

    @property
    def settings(self) -> Settings:
        return self._settings

    def update_settings(self, **changes: Any) -> Settings:
        """Apply ``changes``, save them, and tell every page.

        Raises:
            OSError: the settings file cannot be written.
        """
        self._settings = self._settings.replace(**changes)
        save_settings(self._settings)
        self.settings_changed.emit(self._settings)
        return self._settings

    def backend_base_url(self) -> str:
        """The OpenAI-compatible base URL of the local backend (…/v1)."""
        from gbdesk.backend.botserver_link import backend_url

        return backend_url(self._settings.backend_host, self._settings.backend_port) + "/v1"

    def backend_api_key(self) -> str | None:
        """The backend's API key when one is set (required off 127.0.0.1)."""
        from gbdesk.secrets import get_secret

        return get_secret(BACKEND_KEY_SECRET)

    def backend_log_path(self) -> Path:
        """Where the backend child process's output goes."""
        return app_paths().log_dir / "backend.log"

    def served_model_name(self) -> str | None:
        """The file name of the model the backend serves now, or None (safe from any thread:
        it reads the controller's immutable view and creates nothing)."""
        backend = self._backend
        if backend is None or not backend.view.running:
            return None
        return backend.view.model.replace("\\", "/").rsplit("/", 1)[-1] or None

    def set_profile(self, profile: Any) -> None:
        self.profile = profile
        self.profile_changed.emit(profile)

    @property
    def backend(self):
        """The controller of the bot backend's child process (created on first use)."""
        if self._backend is None:
            from gbdesk.ui.backend_control import BackendController

            self._backend = BackendController(self, parent=self)
            self._backend.state_changed.connect(self._follow_backend)
        return self._backend

    @property
    def downloads(self):
        """The app's download queue (gbdesk.download.manager.DownloadManager, one at a time)."""
        if self._downloads is None:
            from gbdesk.download.manager import DownloadManager

            self._downloads = DownloadManager()
        return self._downloads

    @property
    def heartbeat(self):
        """The shard heartbeat, which runs while the backend is ready and the node registered."""
        if self._heartbeat is None:
            from gbdesk.ui.heartbeat_control import NodeHeartbeat

            self._heartbeat = NodeHeartbeat(self, parent=self)
        return self._heartbeat

    def node_registered(self) -> None:
        """Called after a registration: beat from now on if the backend already serves."""
        if self._backend is not None and self._backend.is_ready():
            self.heartbeat.start()

    def _follow_backend(self, view: Any) -> None:
        from gbdesk.backend.supervisor import BackendState  # not needed before the first paint

        if view.phase is BackendState.READY:
            self.heartbeat.start()
        elif not view.running and self._heartbeat is not None:
            self._heartbeat.stop()

    def shutdown(self) -> None:
        """Stop what this app started: the backend, the heartbeat, the embedded PostgreSQL
        (when this app started it), and cancel running tasks (Quit)."""
        from gbdesk.ui.workers import cancel_all_and_wait

        if self._backend is not None:
            self._backend.stop_and_wait()
        if self._heartbeat is not None:
            self._heartbeat.stop(wait=True)
        if self._downloads is not None:
            self._downloads.shutdown()
            self._downloads = None
        cancel_all_and_wait()
        if self.embedded_started_here:
            self.embedded_started_here = False
            from gbdesk.shard.embedded import EmbeddedPostgres

            try:
                EmbeddedPostgres().stop()
            except GbdeskError as exc:  # Quit goes on; the log says what is left running
                log.warning("the embedded PostgreSQL did not stop: %s", exc.message)

    def quit_summary(self) -> str:
        """What Quit stops, in words (the tray and File menu say it)."""
        parts = ["the bot backend"]
        if self.embedded_started_here:
            parts.append("gbdesk's database")
        return " and ".join(parts)
