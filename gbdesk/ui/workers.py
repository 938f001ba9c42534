"""The one place where core work runs off the GUI thread.

Pages never block the event loop: everything that waits (probe, estimates, downloads, hashing,
model loads, HTTP, database) is a plain function handed to :func:`run_task`. The function runs on
a worker thread and gets a :class:`TaskContext`, whose ``report`` and ``emit`` are the plain
callbacks the core expects and whose ``cancel_event`` is the ``threading.Event`` the core polls.
The context turns them into Qt signals delivered on the GUI thread:

* ``progress(value)``: the latest progress value, at most every 50 ms (a download calls back
  thousands of times a second; the screen needs twenty updates);
* ``item(value)``: every streamed item, in order (chat tokens, log lines);
* ``done(result)``, ``failed(error)``, ``cancelled()``; exactly one of them, then ``finished()``.

``failed`` carries the :class:`~gbdesk.errors.GbdeskError` the task raised, as it was raised (its
class, ``message``, ``fix`` and ``details``): the same typed error that crosses the backend
child's process boundary (:mod:`gbdesk.events`' ``error`` event). Anything else a task raises is
logged with its traceback and reaches the page as an :class:`~gbdesk.errors.UnexpectedError` in
plain words, which points at the log file.

Progress values stay the core's own typed values (a download's ``Progress``, a probe step),
handed over as they are: :mod:`gbdesk.events` is the JSON-lines form for a child process, and
turning in-process values into its ``{type, data}`` dictionaries would only lose their types.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from gbdesk.errors import GbdeskError, UnexpectedError

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.05

_pool: QThreadPool | None = None
# Tasks stay referenced until they finish, so their signal objects outlive the caller's scope.
_running: set[TaskHandle] = set()


def thread_pool() -> QThreadPool:
    """gbdesk's own pool: long jobs (a download, a chat stream) must not starve short ones."""
    global _pool  # noqa: PLW0603 - one pool per process, made on first use
    if _pool is None:
        _pool = QThreadPool()
        _pool.setMaxThreadCount(12)
    return _pool


class TaskCancelledError(Exception):
    """Raised by :meth:`TaskContext.check_cancelled` to leave a task early."""


class TaskSignals(QObject):
    progress = Signal(object)
    item = Signal(object)
    done = Signal(object)
    failed = Signal(object)  # GbdeskError
    cancelled = Signal()
    finished = Signal()


class TaskContext:
    """What a task function gets: callbacks for progress and items, and a cancel flag."""

    def __init__(self, signals: TaskSignals) -> None:
        self._signals = signals
        self.cancel_event = threading.Event()
        self._last_progress = 0.0
        self._pending: Any = None
        self._has_pending = False
        self._lock = threading.Lock()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def check_cancelled(self) -> None:
        """Raise :class:`TaskCancelledError` when the task was asked to stop."""
        if self.cancel_event.is_set():
            raise TaskCancelledError

    def report(self, value: Any) -> None:
        """Progress: only the latest value matters, so updates are coalesced."""
        now = time.monotonic()
        with self._lock:
            if now - self._last_progress < PROGRESS_INTERVAL_S:
                self._pending, self._has_pending = value, True
                return
            self._last_progress = now
            self._has_pending = False
        self._signals.progress.emit(value)

    def emit(self, value: Any) -> None:
        """A streamed item: every one is delivered, in order."""
        self._signals.item.emit(value)

    def flush(self) -> None:
        """Deliver the last coalesced progress value (so the bar ends where the job did)."""
        with self._lock:
            pending, has_pending = self._pending, self._has_pending
            self._has_pending = False
        if has_pending:
            self._signals.progress.emit(pending)


def unexpected_error(name: str, exc: BaseException) -> UnexpectedError:
    """The plain-words error a page gets for an exception no one foresaw in task ``name``."""
    from gbdesk.paths import app_paths

    return UnexpectedError.during(name, exc, log_file=str(app_paths().log_file))


class _Runnable(QRunnable):
    def __init__(self, handle: TaskHandle, fn: Callable[[TaskContext], Any]) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._handle = handle
        self._fn = fn

    def run(self) -> None:
        handle = self._handle
        ctx = handle.context
        signals = handle.signals
        try:
            result = self._fn(ctx)
        except TaskCancelledError:
            ctx.flush()
            signals.cancelled.emit()
        except GbdeskError as exc:
            ctx.flush()
            if ctx.cancelled:
                signals.cancelled.emit()
            else:
                log.warning("%s failed: %s", handle.name, exc.message)
                signals.failed.emit(exc)
        except Exception as exc:
            ctx.flush()
            if ctx.cancelled:
                signals.cancelled.emit()
            else:
                log.exception("%s failed unexpectedly", handle.name)
                signals.failed.emit(unexpected_error(handle.name, exc))
        else:
            ctx.flush()
            if ctx.cancelled:
                signals.cancelled.emit()
            else:
                signals.done.emit(result)
        signals.finished.emit()


class TaskHandle:
    """A running task: its signals, and :meth:`cancel`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.signals = TaskSignals()
        self.context = TaskContext(self.signals)
        self.is_finished = False
        self.signals.finished.connect(self._on_finished)

    def cancel(self) -> None:
        """Ask the task to stop; it ends with ``cancelled`` when the core notices."""
        self.context.cancel_event.set()

    def _on_finished(self) -> None:
        self.is_finished = True
        _running.discard(self)


def run_task(
    name: str,
    fn: Callable[[TaskContext], Any],
    *,
    on_done: Callable[[Any], None] | None = None,
    on_failed: Callable[[GbdeskError], None] | None = None,
    on_progress: Callable[[Any], None] | None = None,
    on_item: Callable[[Any], None] | None = None,
    on_cancelled: Callable[[], None] | None = None,
    on_finished: Callable[[], None] | None = None,
) -> TaskHandle:
    """Run ``fn(context)`` on a worker thread; the callbacks run on the GUI thread.

    ``name`` is a short description ("download", "probe") used in logs and error messages.
    """
    handle = TaskHandle(name)
    signals = handle.signals
    for signal, slot in (
        (signals.done, on_done),
        (signals.failed, on_failed),
        (signals.progress, on_progress),
        (signals.item, on_item),
        (signals.cancelled, on_cancelled),
        (signals.finished, on_finished),
    ):
        if slot is not None:
            signal.connect(slot)
    _running.add(handle)
    thread_pool().start(_Runnable(handle, fn))
    return handle


def running_tasks() -> tuple[TaskHandle, ...]:
    """Tasks that have not finished yet."""
    return tuple(_running)


def cancel_all_and_wait(timeout_ms: int = 10_000) -> bool:
    """Cancel every task and wait for the pool to drain (on quit, and between tests)."""
    for handle in tuple(_running):
        handle.cancel()
    return thread_pool().waitForDone(timeout_ms)
