"""Run `gbdesk serve` as a child process: start, wait until ready, stop, restart after a crash.

Used by the CLI and the GUI (which adapts the state callback to a Qt signal). The child runs with
``--events``: it writes JSON-lines events (:mod:`gbdesk.events`) on its stdout, which this module
reads on a thread (``loading``, ``ready``, and a typed ``error`` before it exits: a taken port, a
model that fails to load); its stderr (logs, native output) goes to the log file. Nothing here
parses the child's prose.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from gbdesk.backend.botserver_link import backend_url
from gbdesk.backend.errors import BackendStartError
from gbdesk.backend.serve import API_KEY_ENV, ServeOptions
from gbdesk.enums import StrEnum
from gbdesk.errors import GbdeskError
from gbdesk.events import EVENTS_FLAG, LIFELINE_FLAG, ChildEvent, EventType, decode
from gbdesk.options import serve_argv

log = logging.getLogger(__name__)


class BackendState(StrEnum):
    """The one vocabulary of the backend's life, for the core and the GUI alike."""

    STOPPED = "stopped"
    STARTING = "starting"  # process started, port not bound yet
    LOADING = "loading"  # port bound (/health says 503), the model loads
    READY = "ready"  # serving requests
    STOPPING = "stopping"
    CRASHED = "crashed"  # exited on its own; a restart may follow
    RESTARTING = "restarting"  # started again after a crash
    FAILED = "failed"  # could not start, or crashed too often

    @property
    def running(self) -> bool:
        """A backend process exists (or is about to)."""
        return self in _RUNNING

    @property
    def busy(self) -> bool:
        """On its way to another state (starting, loading, restarting, stopping)."""
        return self in _BUSY


_RUNNING = frozenset(
    {
        BackendState.STARTING,
        BackendState.LOADING,
        BackendState.READY,
        BackendState.CRASHED,
        BackendState.RESTARTING,
    }
)
_BUSY = frozenset(
    {
        BackendState.STARTING,
        BackendState.LOADING,
        BackendState.RESTARTING,
        BackendState.STOPPING,
    }
)


@dataclass(frozen=True)
class BackendStatus:
    state: BackendState
    url: str
    pid: int | None
    restarts: int
    error: GbdeskError | None  # why it failed or crashed, as the child reported it
    log_file: str


StateCallback = Callable[[BackendStatus], None]


def serve_command(options: ServeOptions) -> list[str]:
    """The child's command line (the API key travels in the environment, never in argv).

    It starts with :func:`gbdesk.bundle.gbdesk_command`: ``python -m gbdesk`` from a Python
    environment, the bundle's own executable in an installed copy.
    """
    from gbdesk.bundle import gbdesk_command

    return [*gbdesk_command(), "serve", *serve_argv(asdict(options)), EVENTS_FLAG, LIFELINE_FLAG]


class BackendSupervisor:
    """One backend child process.

    Args:
        options: what to serve and where.
        log_file: where the child's stdout and stderr go (appended).
        on_state: called (from any thread) with every state change.
        max_restarts: restarts allowed after crashes of a backend that had been ready.
    """

    def __init__(
        self,
        options: ServeOptions,
        *,
        log_file: Path,
        on_state: StateCallback | None = None,
        max_restarts: int = 3,
        health_timeout: float = 120.0,
    ) -> None:
        options.check()
        self.options = options
        self.log_file = Path(log_file)
        self.url = backend_url(options.host, options.port)
        self._on_state = on_state
        self.max_restarts = max_restarts
        self.health_timeout = health_timeout
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._process: subprocess.Popen[bytes] | None = None
        self._state = BackendState.STOPPED
        self._error: GbdeskError | None = None
        self._reader: threading.Thread | None = None
        self.restarts = 0
        self._stopping = False
        self._watcher: threading.Thread | None = None

    # ------------------------------------------------------------------ public

    def status(self) -> BackendStatus:
        with self._lock:
            process = self._process
            return BackendStatus(
                state=self._state,
                url=self.url,
                pid=process.pid if process and process.poll() is None else None,
                restarts=self.restarts,
                error=self._error,
                log_file=str(self.log_file),
            )

    def start(self, *, wait: bool = True) -> BackendStatus:
        """Start the child; with ``wait``, return once it says it is ready.

        Raises:
            BackendStartError: the child exited (bad model, taken port...) or stayed unhealthy.
        """
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                return self.status()
            self._stopping = False
            self._error = None
            self._spawn()
        if wait:
            self.wait_ready()
        return self.status()

    def wait_ready(
        self, timeout: float | None = None, *, cancel: threading.Event | None = None
    ) -> None:
        """Block until the child says ``ready`` (or, quietly, until ``cancel`` is set).

        Raises:
            BackendStartError: the child exited first, or ``timeout`` passed.
        """
        deadline = time.monotonic() + (timeout or self.health_timeout)
        exited = False
        with self._changed:
            while time.monotonic() < deadline:
                process = self._process
                if process is None or process.poll() is not None:
                    exited = True
                    break
                if self._state is BackendState.READY or (cancel and cancel.is_set()):
                    return
                self._changed.wait(min(0.1, max(0.0, deadline - time.monotonic())))
        if exited:
            self._fail_start(process)
        message = f"the backend did not become ready within {timeout or self.health_timeout:.0f} s"
        self.stop()
        self._error = BackendStartError(message, fix=f"see the log: {self.log_file}")
        self._set_state(BackendState.FAILED)
        raise self._error

    def stop(self, *, timeout: float = 10.0) -> None:
        """Ask the child to exit (SIGTERM), kill it after ``timeout`` seconds."""
        with self._lock:
            self._stopping = True
            process = self._process
            if process is None or process.poll() is not None:
                self._process = None
                self._set_state(BackendState.STOPPED)
                return
            self._set_state(BackendState.STOPPING)
        terminate(process, timeout, "the backend")
        with self._lock:
            self._process = None
            self._set_state(BackendState.STOPPED)

    # ------------------------------------------------------------------ internals

    def _spawn(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.pop(API_KEY_ENV, None)
        if self.options.api_key:
            env[API_KEY_ENV] = self.options.api_key
        env["PYTHONUNBUFFERED"] = "1"
        with open(self.log_file, "ab") as log_handle:
            process = spawn_child(serve_command(self.options), log_handle, env=env)
        self._process = process
        log.info("backend started (pid %d), log in %s", process.pid, self.log_file)
        self._set_state(BackendState.RESTARTING if self.restarts else BackendState.STARTING)
        self._reader = threading.Thread(
            target=self._read_events, args=(process,), name="gbdesk-backend-events", daemon=True
        )
        self._reader.start()
        self._watcher = threading.Thread(
            target=self._watch, args=(process,), name="gbdesk-backend-watch", daemon=True
        )
        self._watcher.start()

    def _read_events(self, process: subprocess.Popen[bytes]) -> None:
        """Turn the child's events into states; a stray line of output goes to the log."""
        for event in child_events(process, self.log_file):
            with self._lock:
                if process is not self._process:
                    continue
                if event.type is EventType.ERROR:
                    self._error = event.error
                elif event.type is EventType.LOADING and not self._stopping:
                    self._set_state(BackendState.LOADING)
                elif event.type is EventType.READY and not self._stopping:
                    self._set_state(BackendState.READY)

    def _child_error(self, process: subprocess.Popen[bytes] | None) -> GbdeskError:
        """The error the child reported before it exited, once its events are all read."""
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout=5)
        code = process.poll() if process else None
        with self._lock:
            if self._error is not None:
                return self._error
        return GbdeskError(f"the backend exited with status {code}")

    def _watch(self, process: subprocess.Popen[bytes]) -> None:
        """Restart a backend that was ready and then exited on its own."""
        code = process.wait()
        close_lifeline(process)
        error = self._child_error(process)
        with self._lock:
            if self._stopping or process is not self._process:
                return
            was_ready = self._state is BackendState.READY
            if not was_ready:
                return  # start() / wait_ready() report it
            self._error = error
            log.warning("backend exited with status %s: %s", code, error.message)
            self._set_state(BackendState.CRASHED)
            if self.restarts >= self.max_restarts:
                self._set_state(BackendState.FAILED)
                return
            self.restarts += 1
            self._error = None
            self._spawn()
        try:
            self.wait_ready()
        except BackendStartError:
            log.exception("backend restart failed")

    def _fail_start(self, process: subprocess.Popen[bytes] | None) -> None:
        cause = self._child_error(process)
        with self._lock:
            self._error = cause
            self._process = None
            self._set_state(BackendState.FAILED)
        raise BackendStartError(
            f"the backend could not start: {cause.message}",
            fix=cause.fix or f"see the log: {self.log_file}",
            details={"cause": cause.to_json(), "log_file": str(self.log_file)},
        )

    def _set_state(self, state: BackendState) -> None:
        with self._lock:
            changed = state is not self._state
            self._state = state
            self._changed.notify_all()
        if changed and self._on_state is not None:
            try:
                self._on_state(self.status())
            except Exception:
                log.exception("backend state callback failed")


def spawn_child(
    argv: list[str], log_handle: BinaryIO, *, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a supervised child (``argv`` has ``--events --lifeline``): its events come on its
    stdout, its log goes to ``log_handle``, and its stdin is the lifeline, a pipe whose write end
    only this process holds, so the child stops when this process exits in any way.

    Raises:
        OSError: the program cannot be started.
    """
    return subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_handle, env=env
    )


def child_events(process: subprocess.Popen[bytes], log_file: Path) -> Iterator[ChildEvent]:
    """The events a supervised child writes on its stdout, until it closes; any other line it
    prints there goes to ``log_file``."""
    assert process.stdout is not None
    with process.stdout, open(log_file, "ab") as log_handle:
        for line in process.stdout:
            event = decode(line)
            if event is None:
                log_handle.write(line)
                log_handle.flush()
            else:
                yield event


def close_lifeline(process: subprocess.Popen[bytes]) -> None:
    """Close our end of a child's lifeline (it tells a child that is still running to stop)."""
    if process.stdin is not None:
        with contextlib.suppress(OSError):  # the child is gone and the pipe with it
            process.stdin.close()


def terminate(process: subprocess.Popen[bytes], timeout_s: float, what: str) -> None:
    """Ask a child to exit (SIGTERM) and wait; kill it after ``timeout_s`` seconds."""
    process.terminate()
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        log.warning("%s did not stop in %.0f s: killing it", what, timeout_s)
        process.kill()
        process.wait()
    finally:
        close_lifeline(process)
