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
# Settings the core writes itself (botserver_link.write_botserver_config records its files).
_CORE_SAVED = ("botserver_config_csv", "botserver_env_file")


class AppState(QObject):
    """Settings (saved on every change), the last hardware profile, and shared services."""

    settings_changed = Signal(object)
    profile_changed = Signal(object)
    # botserver's files were brought in line with the served model (a backend_link.ModelSync),
    # or could not be (a GbdeskError): the Chat page's model picker says which.
    botserver_synced = Signal(object)

    def __init__(self, settings: Settings | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        from gbdesk.ui.wheel_guard import install_wheel_guard

        install_wheel_guard()  # every window's spin and combo boxes ignore an unfocused wheel
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
        self._calibration: Any = None
        # Set (from any thread) when this app started gbdesk's embedded PostgreSQL: Quit stops it.
        self.embedded_started_here = False
        self.resumed_model = ""  # the model resume_serving() started at launch (pages say so)

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
        self._settings = self._with_core_saved(self._settings).replace(**changes)
        save_settings(self._settings)
        self.settings_changed.emit(self._settings)
        return self._settings

    @staticmethod
    def _with_core_saved(settings: Settings) -> Settings:
        """``settings`` with the fields the core saves by itself taken from the file (where
        botserver's files were written, from the wizard or `gbdesk botserver-config`), so a
        save from this app never puts back an older value."""
        try:
            saved = load_settings()
        except GbdeskError:
            return settings
        return settings.replace(**{name: getattr(saved, name) for name in _CORE_SAVED})

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

    def resume_serving(self) -> bool:
        """At launch, serve the settings' model again when the wizard is done and the
        ``resume_backend`` setting is on (a node set up for botserver keeps serving across a
        Quit and relaunch; the shard heartbeat follows once it is ready). Returns whether it
        started; :attr:`resumed_model` then names the model, for the pages to say so."""
        settings = self._settings
        if not (settings.first_run_done and settings.resume_backend):
            return False
        if self.backend.is_running() or self.backend.is_busy():
            return False
        self.backend.start()
        self.resumed_model = self.backend.view.model
        log.info("resumed serving %s (the resume_backend setting is on)", self.resumed_model)
        return True

    @property
    def calibration(self):
        """The background measurement of this computer that calibrates the speed figures
        (gbdesk.ui.calibration_control.CalibrationRunner, created on first use)."""
        if self._calibration is None:
            from gbdesk.ui.calibration_control import CalibrationRunner

            self._calibration = CalibrationRunner(parent=self)
        return self._calibration

    def node_registered(self) -> None:
        """Called after a registration: beat from now on if the backend already serves."""
        if self._backend is not None and self._backend.is_ready():
            self.heartbeat.start()

    def _follow_backend(self, view: Any) -> None:
        from gbdesk.backend.supervisor import BackendState  # not needed before the first paint

        if view.phase is BackendState.READY:
            self.heartbeat.start()
            self._sync_botserver(view.model)
        elif not view.running and self._heartbeat is not None:
            self._heartbeat.stop()

    def _sync_botserver(self, model: str) -> None:
        """Keep botserver's config.csv / .env (the ones gbdesk wrote) naming the served model:
        a model switched from the Chat or Models page is the model botserver uses too."""
        from gbdesk.ui.workers import run_task

        def sync(_ctx: Any) -> Any:
            from gbdesk.backend.botserver_link import sync_served_model

            saved = load_settings()  # the core records the files it writes (wizard, CLI)
            if not (saved.botserver_config_csv or saved.botserver_env_file):
                return None  # gbdesk never wrote botserver's files
            return sync_served_model(model)

        run_task(
            "update botserver's model",
            sync,
            on_done=self.botserver_synced.emit,
            on_failed=self.botserver_synced.emit,
        )

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
