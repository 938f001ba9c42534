"""Run `gbdesk serve` as a child process: start, wait for health, stop, restart after a crash.

Used by the CLI and the GUI (which adapts the state callback to a Qt signal). The child's output
goes to a log file; when it exits early, its last ``error:`` line (a taken port, a model that
fails to load) becomes the :class:`BackendStartError` message.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from gbdesk.backend.botserver_link import backend_url
from gbdesk.backend.errors import BackendStartError
from gbdesk.backend.serve import API_KEY_ENV, ServeOptions
from gbdesk.options import serve_argv

log = logging.getLogger(__name__)


class BackendState(enum.Enum):
    STOPPED = "stopped"
    STARTING = "starting"  # process started, model loading
    READY = "ready"  # /health answers 200
    STOPPING = "stopping"
    CRASHED = "crashed"  # exited on its own; a restart may follow
    FAILED = "failed"  # could not start, or crashed too often


@dataclass(frozen=True)
class BackendStatus:
    state: BackendState
    url: str
    pid: int | None
    restarts: int
    error: str | None
    log_file: str


StateCallback = Callable[[BackendStatus], None]


def serve_command(options: ServeOptions) -> list[str]:
    """The child's command line (the API key travels in the environment, never in argv).

    It starts with :func:`gbdesk.bundle.gbdesk_command`: ``python -m gbdesk`` from a Python
    environment, the bundle's own executable in an installed copy.
    """
    from gbdesk.bundle import gbdesk_command

    return [*gbdesk_command(), "serve", *serve_argv(asdict(options))]


def last_error(log_file: Path, *, max_bytes: int = 16384) -> str | None:
    """The child's last ``error:`` message (with its ``fix:`` line) from the log's tail."""
    try:
        with open(log_file, "rb") as handle:
            handle.seek(max(0, log_file.stat().st_size - max_bytes))
            tail = handle.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for index in range(len(tail) - 1, -1, -1):
        if tail[index].startswith("error: "):
            message = tail[index][len("error: ") :]
            following = tail[index + 1].strip() if index + 1 < len(tail) else ""
            return f"{message} ({following})" if following.startswith("fix:") else message
    if any("Traceback" in line for line in tail):
        return tail[-1]
    return None


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
        self._process: subprocess.Popen[bytes] | None = None
        self._state = BackendState.STOPPED
        self._error: str | None = None
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
        """Start the child; with ``wait``, return once /health answers 200.

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

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until /health is 200.

        Raises:
            BackendStartError: the child exited first, or ``timeout`` passed.
        """
        deadline = time.monotonic() + (timeout or self.health_timeout)
        while time.monotonic() < deadline:
            with self._lock:
                process = self._process
            if process is None or process.poll() is not None:
                self._fail_start(process)
            if self._healthy():
                self._set_state(BackendState.READY)
                return
            time.sleep(0.1)
        message = f"the backend did not become ready within {timeout or self.health_timeout:.0f} s"
        self.stop()
        self._error = message
        self._set_state(BackendState.FAILED)
        raise BackendStartError(message, fix=f"see the log: {self.log_file}")

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
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("the backend did not stop in %.0f s: killing it", timeout)
            process.kill()
            process.wait()
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
            self._process = subprocess.Popen(
                serve_command(self.options),
                stdin=subprocess.DEVNULL,
                stdout=log_handle,
                stderr=subprocess.STDOUT,
                env=env,
            )
        log.info("backend started (pid %d), log in %s", self._process.pid, self.log_file)
        self._set_state(BackendState.STARTING)
        self._watcher = threading.Thread(
            target=self._watch, args=(self._process,), name="gbdesk-backend-watch", daemon=True
        )
        self._watcher.start()

    def _watch(self, process: subprocess.Popen[bytes]) -> None:
        """Restart a backend that was ready and then exited on its own."""
        code = process.wait()
        with self._lock:
            if self._stopping or process is not self._process:
                return
            was_ready = self._state is BackendState.READY
            self._error = last_error(self.log_file) or f"the backend exited with status {code}"
            if not was_ready:
                return  # start() / wait_ready() report it
            self._set_state(BackendState.CRASHED)
            if self.restarts >= self.max_restarts:
                self._set_state(BackendState.FAILED)
                return
            self.restarts += 1
            log.warning("backend exited with status %s; restart %d", code, self.restarts)
            self._spawn()
        try:
            self.wait_ready()
        except BackendStartError:
            log.exception("backend restart failed")

    def _fail_start(self, process: subprocess.Popen[bytes] | None) -> None:
        code = process.poll() if process else None
        message = last_error(self.log_file) or f"the backend exited with status {code}"
        with self._lock:
            self._error = message
            self._process = None
            self._set_state(BackendState.FAILED)
        raise BackendStartError(
            f"the backend could not start: {message}", fix=f"see the log: {self.log_file}"
        )

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                return response.status == 200 and json.load(response).get("status") == "ok"
        except (OSError, ValueError, urllib.error.URLError):
            return False

    def _set_state(self, state: BackendState) -> None:
        with self._lock:
            changed = state is not self._state
            self._state = state
        if changed and self._on_state is not None:
            try:
                self._on_state(self.status())
            except Exception:
                log.exception("backend state callback failed")
