"""The bot backend for the GUI: a Qt adapter around the core supervisor.

:class:`BackendController` owns one :class:`gbdesk.backend.supervisor.BackendSupervisor` (the
``gbdesk serve`` child process). Starting, waiting for health and stopping run in workers
(:mod:`gbdesk.ui.workers`); every change reaches the pages as one ``state_changed`` signal
carrying a :class:`BackendView`:

``stopped`` → ``starting`` (process up, port not answering yet) → ``loading`` (/health says 503
while the model loads) → ``ready``; ``failed`` carries the child's error message and fix (a taken
port, a damaged model); ``crashed`` → ``restarting`` → ``ready`` when a ready backend died and
the supervisor restarts it; ``stopping`` → ``stopped``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Any

from PySide6.QtCore import QObject, Signal

from gbdesk.options import STARTER
from gbdesk.ui.workers import TaskContext, TaskHandle, run_task

log = logging.getLogger(__name__)

STOPPED = "stopped"
STARTING = "starting"
LOADING = "loading"
READY = "ready"
STOPPING = "stopping"
FAILED = "failed"
CRASHED = "crashed"
RESTARTING = "restarting"

# Phases in which a backend process exists (or is about to).
RUNNING_PHASES = frozenset({STARTING, LOADING, READY, CRASHED, RESTARTING})

PHASE_TEXT = {
    STOPPED: "Stopped",
    STARTING: "Starting…",
    LOADING: "Loading the model…",
    READY: "Ready",
    STOPPING: "Stopping…",
    FAILED: "Could not start",
    CRASHED: "Stopped unexpectedly",
    RESTARTING: "Restarting…",
}


@dataclass(frozen=True)
class BackendView:
    """The backend as the pages show it."""

    phase: str
    url: str = ""  # http://host:port, without /v1
    model: str = ""
    message: str = ""  # what went wrong (failed / crashed)
    fix: str = ""
    pid: int | None = None
    restarts: int = 0

    @property
    def text(self) -> str:
        return PHASE_TEXT.get(self.phase, self.phase)

    @property
    def running(self) -> bool:
        return self.phase in RUNNING_PHASES


def split_error(error: str) -> tuple[str, str]:
    """The supervisor's "message (fix: ...)" as (message, fix)."""
    head, sep, tail = error.rpartition(" (fix: ")
    if sep and tail.endswith(")"):
        return head, tail[:-1]
    return error, ""


def health_status(url: str, timeout_s: float = 1.0) -> int | None:
    """The HTTP status of ``url``/health, or None when nothing answers."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout_s) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


def serve_options(settings: Any, model: str, api_key: str | None) -> Any:
    """The core's ServeOptions from the GUI's settings (0 means "let the estimator choose")."""
    from gbdesk.backend.serve import ServeOptions

    return ServeOptions.from_settings(settings, api_key=api_key, model=model)


def start_and_wait(ctx: TaskContext, supervisor: Any) -> Any:
    """Start the child and wait for /health; reports ``loading`` once the port answers 503.

    Raises:
        BackendStartError: the child exited (taken port, bad model) or stayed unhealthy.
    """
    from gbdesk.backend.supervisor import BackendState
    from gbdesk.ui.workers import TaskCancelledError

    supervisor.start(wait=False)
    reported_loading = False
    deadline = time.monotonic() + supervisor.health_timeout
    while time.monotonic() < deadline:
        if ctx.cancelled:
            supervisor.stop()
            raise TaskCancelledError
        status = supervisor.status()
        if status.pid is None or status.state is not BackendState.STARTING:
            break  # exited (wait_ready reports why) or already ready
        code = health_status(supervisor.url)
        if code == 200:
            break
        if code == 503 and not reported_loading:
            reported_loading = True
            ctx.report(LOADING)
        ctx.cancel_event.wait(0.1)
    try:
        supervisor.wait_ready(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if ctx.cancelled:  # stopped while it loaded: no child may outlive the request
            supervisor.stop()
    ctx.check_cancelled()
    return supervisor.status()


class BackendController(QObject):
    """Start, stop and restart the backend; tells the pages through ``state_changed``."""

    state_changed = Signal(object)  # BackendView
    _status_from_thread = Signal(object)  # the supervisor's BackendStatus, from any thread

    def __init__(self, state: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._state = state
        self._supervisor: Any = None
        self._task: TaskHandle | None = None
        self._pending_start: str | None = None
        self._view = BackendView(STOPPED)
        self._status_from_thread.connect(self._on_supervisor_status)

    # --- what pages read ---------------------------------------------------------------

    @property
    def view(self) -> BackendView:
        return self._view

    def is_running(self) -> bool:
        return self._view.running

    def is_ready(self) -> bool:
        return self._view.phase == READY

    def is_busy(self) -> bool:
        """A start or stop is in progress."""
        return self._task is not None

    # --- actions -------------------------------------------------------------------------

    def start(self, model: str | None = None) -> None:
        """Start serving ``model`` (default: the settings' model, else the starter model),
        with the port, context and parallel chats from the settings. Does nothing while a
        backend already runs; use :meth:`restart` to change the model."""
        if self._task is not None:
            self._pending_start = model or self._pending_start or self._model()
            return
        if self._view.running:
            return
        model = model or self._model()
        settings = self._state.settings
        api_key = self._state.backend_api_key()
        log_file = self._state.backend_log_path()
        self._set_view(BackendView(STARTING, model=model))

        def work(ctx: TaskContext) -> Any:
            from gbdesk.backend.supervisor import BackendSupervisor

            supervisor = BackendSupervisor(
                serve_options(settings, model, api_key),
                log_file=log_file,
                on_state=self._status_from_thread.emit,
            )
            self._supervisor = supervisor
            return start_and_wait(ctx, supervisor)

        self._task = run_task(
            "start the backend",
            work,
            on_progress=self._on_progress,
            on_done=self._on_started,
            on_failed=self._on_start_failed,
            on_cancelled=lambda: self._set_view(BackendView(STOPPED)),
            on_finished=self._on_task_finished,
        )

    def stop(self) -> None:
        """Stop the backend (in a worker; ``stopping`` then ``stopped``)."""
        self._pending_start = None
        if self._task is not None:
            self._task.cancel()
            return
        supervisor = self._supervisor
        if supervisor is None:
            self._set_view(BackendView(STOPPED))
            return
        self._set_view(replace(self._view, phase=STOPPING))
        self._task = run_task(
            "stop the backend",
            lambda _ctx: supervisor.stop(),
            on_done=lambda _result: self._set_view(BackendView(STOPPED)),
            on_failed=self._on_start_failed,
            on_finished=self._on_task_finished,
        )

    def restart(self, model: str | None = None) -> None:
        """Stop the backend if it runs, then start it (with ``model`` when given)."""
        model = model or self._model()
        if self._view.running or self._task is not None:
            self._pending_start = model
            self.stop()
        else:
            self.start(model)

    def stop_and_wait(self) -> None:
        """Stop the backend now, blocking (Quit): the child must not outlive the app."""
        self._pending_start = None
        if self._task is not None:
            self._task.cancel()
        supervisor = self._supervisor
        if supervisor is not None:
            supervisor.stop()
        self._supervisor = None
        self._set_view(BackendView(STOPPED))

    # --- internals -----------------------------------------------------------------------

    def _model(self) -> str:
        return self._state.settings.model or STARTER

    def _set_view(self, view: BackendView) -> None:
        if view != self._view:
            self._view = view
            self.state_changed.emit(view)

    def _on_progress(self, phase: str) -> None:
        if self._view.phase == STARTING:
            self._set_view(replace(self._view, phase=phase))

    def _on_started(self, status: Any) -> None:
        self._set_view(self._view_of(status))

    def _on_start_failed(self, message: str, fix: str) -> None:
        supervisor = self._supervisor
        error = supervisor.status().error if supervisor is not None else None
        if error:  # the child's own message and fix (a taken port, a damaged model)
            message, child_fix = split_error(error)
            fix = child_fix or fix
        self._set_view(replace(self._view, phase=FAILED, message=message, fix=fix, pid=None))

    def _on_task_finished(self) -> None:
        self._task = None
        pending, self._pending_start = self._pending_start, None
        if pending is not None and not self._view.running:
            self.start(pending)

    def _on_supervisor_status(self, status: Any) -> None:
        """State changes the supervisor makes on its own: a crash and its restart."""
        from gbdesk.backend.supervisor import BackendState

        if self._task is not None:
            return  # a start or stop in progress reports its own outcome
        if status.state is BackendState.CRASHED:
            message, fix = split_error(status.error or "the backend exited")
            self._set_view(replace(self._view, phase=CRASHED, message=message, fix=fix))
        elif status.state is BackendState.STARTING and status.restarts:
            self._set_view(replace(self._view, phase=RESTARTING, restarts=status.restarts))
        elif status.state is BackendState.READY:
            self._set_view(self._view_of(status))
        elif status.state is BackendState.FAILED:
            message, fix = split_error(status.error or "the backend could not restart")
            self._set_view(replace(self._view, phase=FAILED, message=message, fix=fix))

    def _view_of(self, status: Any) -> BackendView:
        return BackendView(
            READY,
            url=status.url,
            model=self._view.model,
            pid=status.pid,
            restarts=status.restarts,
        )
