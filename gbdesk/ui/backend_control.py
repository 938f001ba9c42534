"""The bot backend for the GUI: a Qt adapter around the core supervisor.

:class:`BackendController` owns one :class:`gbdesk.backend.supervisor.BackendSupervisor` (the
``gbdesk serve`` child process). Starting, waiting until ready and stopping run in workers
(:mod:`gbdesk.ui.workers`); every change reaches the pages as one ``state_changed`` signal
carrying a :class:`BackendView`:

The phases are the core's :class:`~gbdesk.backend.supervisor.BackendState`: ``stopped`` →
``starting`` (process up) → ``loading`` (the child's ``loading`` event) → ``ready``; ``failed``
carries the child's typed error's message and fix (a taken port, a damaged model);
``crashed`` → ``restarting`` → ``ready`` when a ready backend died and the supervisor restarts it;
``stopping`` → ``stopped``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from PySide6.QtCore import QObject, Signal

from gbdesk.backend.ports import free_port_near
from gbdesk.backend.supervisor import BackendState
from gbdesk.errors import GbdeskError
from gbdesk.hardware.ports import port_is_free
from gbdesk.options import STARTER
from gbdesk.ui.workers import TaskContext, TaskHandle, run_task

log = logging.getLogger(__name__)

PHASE_TEXT = {
    BackendState.STOPPED: "Stopped",
    BackendState.STARTING: "Starting…",
    BackendState.LOADING: "Loading the model…",
    BackendState.READY: "Ready",
    BackendState.STOPPING: "Stopping…",
    BackendState.FAILED: "Could not start",
    BackendState.CRASHED: "Stopped unexpectedly",
    BackendState.RESTARTING: "Restarting…",
}


@dataclass(frozen=True)
class BackendView:
    """The backend as the pages show it."""

    phase: BackendState
    url: str = ""  # http://host:port, without /v1
    model: str = ""
    message: str = ""  # what went wrong (failed / crashed)
    fix: str = ""
    pid: int | None = None
    restarts: int = 0
    action: str = ""  # what the error's button does: "use_another_port", or "" (Start again)

    @property
    def text(self) -> str:
        return PHASE_TEXT[self.phase]

    @property
    def running(self) -> bool:
        return self.phase.running


PORT_TAKEN = "use_another_port"
__all__ = ["BackendController", "BackendView", "free_port_near", "port_is_free"]


def plain_error(error: GbdeskError, port: int) -> tuple[str, str, str]:
    """(message, fix, action) of the backend's typed error in words for a person: no errno, no
    command-line flag."""
    from gbdesk.backend.errors import PortInUseError

    message, fix = error.message, error.fix or ""
    if isinstance(error, PortInUseError):
        return (
            f"Port {port} is used by another program.",
            "press Use another port (gbdesk picks a free one), or close the other program",
            PORT_TAKEN,
        )
    if "--" in fix or "`" in fix:  # a command-line fix means nothing in the app
        fix = "see the backend's log on the Logs page"
    return message, fix, ""


# How the Settings page names an option in "Restart the backend to apply".
_SETTING_WORDS = {
    "backend_host": "address",
    "backend_port": "port",
    "context_length": "context length",
    "parallel": "parallel chats",
    "gpu_layers": "GPU layers",
    "queue_limit": "waiting requests",
    "alias": "model name for clients",
    "repack": "repacked weights",
    "rpc_workers": "workers",
}


def backend_settings(settings: Any, model: str) -> dict[str, Any]:
    """The settings a running backend was started with: every option the schema marks as
    needing a restart (``Option.restart``), named in words, with ``model`` as served."""
    from gbdesk.options import OPTIONS

    values = {
        _SETTING_WORDS.get(item.name, item.name.replace("_", " ")): getattr(settings, item.name)
        for item in OPTIONS
        if item.restart and item.name != "model"
    }
    values["model"] = model
    return values


def serve_options(settings: Any, model: str, api_key: str | None) -> Any:
    """The core's ServeOptions from the GUI's settings (0 means "let the estimator choose")."""
    from gbdesk.backend.serve import ServeOptions

    return ServeOptions.from_settings(settings, api_key=api_key, model=model)


def start_and_wait(ctx: TaskContext, supervisor: Any) -> Any:
    """Start the child and wait until it is ready (the supervisor reports ``loading``).

    Raises:
        BackendStartError: the child exited (taken port, bad model) or stayed unhealthy.
    """
    supervisor.start(wait=False)
    try:
        supervisor.wait_ready(cancel=ctx.cancel_event)
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
        self._view = BackendView(BackendState.STOPPED)
        self._applied: dict[str, Any] | None = None  # what the running backend was started with
        self._status_from_thread.connect(self._on_supervisor_status)

    # --- what pages read ---------------------------------------------------------------

    @property
    def view(self) -> BackendView:
        return self._view

    def is_running(self) -> bool:
        return self._view.running

    def is_ready(self) -> bool:
        return self._view.phase is BackendState.READY

    def is_busy(self) -> bool:
        """A start or stop is in progress."""
        return self._task is not None

    def current_model(self) -> str:
        """The model the backend serves (or is starting with); "" when stopped."""
        return self._view.model if self._view.running else ""

    def pending_changes(self) -> tuple[str, ...]:
        """Names of the settings the running backend does not have yet ("Restart to apply")."""
        if self._applied is None or not self._view.running:
            return ()
        wanted = backend_settings(self._state.settings, self._model())
        return tuple(name for name, value in wanted.items() if self._applied.get(name) != value)

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
        self._applied = backend_settings(settings, model)
        self._set_view(BackendView(BackendState.STARTING, model=model))

        def work(ctx: TaskContext) -> Any:
            from gbdesk.backend.errors import PortInUseError
            from gbdesk.backend.supervisor import BackendSupervisor

            self._supervisor = None  # a stopped one's old error must not be reported again
            if not port_is_free(settings.backend_host, settings.backend_port):
                raise PortInUseError(f"port {settings.backend_port} is already in use")

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
            on_done=self._on_started,
            on_failed=self._on_start_failed,
            on_cancelled=lambda: self._set_view(BackendView(BackendState.STOPPED)),
            on_finished=self._on_task_finished,
        )

    def stop(self) -> None:
        """Stop the backend (in a worker; ``stopping`` then ``stopped``)."""
        self._pending_start = None
        self._stop()

    def _stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            return
        supervisor = self._supervisor
        if supervisor is None:
            self._set_view(BackendView(BackendState.STOPPED))
            return
        self._set_view(replace(self._view, phase=BackendState.STOPPING))
        self._task = run_task(
            "stop the backend",
            lambda _ctx: supervisor.stop(),
            on_done=lambda _result: self._set_view(BackendView(BackendState.STOPPED)),
            on_failed=self._on_start_failed,
            on_finished=self._on_task_finished,
        )

    def restart(self, model: str | None = None) -> None:
        """Stop the backend if it runs, then start it (with ``model`` when given)."""
        model = model or self._model()
        if self._view.running or self._task is not None:
            self._stop()
            self._pending_start = model  # started when the stop has finished
        else:
            self.start(model)

    def use_another_port(self) -> int:
        """Save a free port in the settings and start the backend on it; returns the port."""
        settings = self._state.settings
        # Free now, and neither the chat nor the embedding port (which the backend opens too).
        port = free_port_near(
            settings.backend_host,
            settings.backend_port,
            avoid={settings.backend_port, settings.embedding_port},
        )
        self._state.update_settings(backend_port=port)
        self.restart()
        return port

    def stop_and_wait(self) -> None:
        """Stop the backend now, blocking (Quit): the child must not outlive the app."""
        self._pending_start = None
        if self._task is not None:
            self._task.cancel()
        supervisor = self._supervisor
        if supervisor is not None:
            supervisor.stop()
        self._supervisor = None
        self._set_view(BackendView(BackendState.STOPPED))

    # --- internals -----------------------------------------------------------------------

    def _model(self) -> str:
        return self._state.settings.model or STARTER

    def _set_view(self, view: BackendView) -> None:
        if view != self._view:
            self._view = view
            self.state_changed.emit(view)

    def _on_started(self, status: Any) -> None:
        self._set_view(self._view_of(status))

    def _on_start_failed(self, error: GbdeskError) -> None:
        supervisor = self._supervisor
        child_error = supervisor.status().error if supervisor is not None else None
        port = self._state.settings.backend_port
        # The child's own error (a taken port, a damaged model) says more than the wait's.
        shown = child_error or error
        message, fix, action = plain_error(shown, port)
        if not fix and shown is not error:
            fix = plain_error(error, port)[1]
        self._applied = None
        failed = replace(
            self._view,
            phase=BackendState.FAILED,
            message=message,
            fix=fix,
            action=action,
            pid=None,
        )
        self._set_view(failed)

    def _on_task_finished(self) -> None:
        self._task = None
        pending, self._pending_start = self._pending_start, None
        if pending is not None and not self._view.running:
            self.start(pending)

    def _on_supervisor_status(self, status: Any) -> None:
        """State changes the supervisor makes on its own: loading, a crash and its restart."""
        if status.state is BackendState.LOADING:
            if self._view.phase in {BackendState.STARTING, BackendState.RESTARTING}:
                self._set_view(replace(self._view, phase=BackendState.LOADING))
            return
        if self._task is not None:
            return  # a start or stop in progress reports its own outcome
        if status.state is BackendState.CRASHED:
            error = status.error or GbdeskError("the backend exited")
            message, fix, action = plain_error(error, self._state.settings.backend_port)
            self._set_view(
                replace(
                    self._view,
                    phase=BackendState.CRASHED,
                    message=message,
                    fix=fix,
                    action=action,
                )
            )
        elif status.state is BackendState.RESTARTING:
            self._set_view(
                replace(self._view, phase=BackendState.RESTARTING, restarts=status.restarts)
            )
        elif status.state is BackendState.READY:
            self._set_view(self._view_of(status))
        elif status.state is BackendState.FAILED:
            error = status.error or GbdeskError("the backend could not restart")
            message, fix, action = plain_error(error, self._state.settings.backend_port)
            self._set_view(
                replace(
                    self._view, phase=BackendState.FAILED, message=message, fix=fix, action=action
                )
            )

    def _view_of(self, status: Any) -> BackendView:
        return BackendView(
            BackendState.READY,
            url=status.url,
            model=self._view.model,
            pid=status.pid,
            restarts=status.restarts,
        )
