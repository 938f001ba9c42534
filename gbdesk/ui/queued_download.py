"""One download queued from a page's button: the Hub browser's, the handbook's and the pooled
models' rows all go through :func:`queue_download`.

The download manager calls back on worker threads; this carries its progress, state and end to
the GUI thread (at most ten progress updates a second) and submits off the GUI thread (the
submission reads the catalogue, the settings and the keyring for the Hub token).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from gbdesk.errors import GbdeskError
from gbdesk.ui.workers import run_task

PROGRESS_INTERVAL_S = 0.1

# Signals of downloads in flight: kept here so that no wrapper is collected before its end.
_in_flight: set[QObject] = set()


class _DownloadSignals(QObject):
    """Carries one download's callbacks (worker threads) to the GUI thread."""

    progress = Signal(object)
    state = Signal(object)
    done = Signal(object)


def queue_download(
    parent: QObject,
    downloads: Any,
    spec: Callable[[], Any],
    *,
    on_progress: Callable[[Any], None],
    on_done: Callable[[Any], None],
    on_refused: Callable[[GbdeskError], None],
    on_state: Callable[[Any], None] | None = None,
    on_queued: Callable[[Any], None] | None = None,
) -> None:
    """Submit ``spec()`` (built off the GUI thread) to ``downloads`` (the app's manager).

    Every callback runs on the GUI thread: ``on_progress(progress)`` at most ten times a second,
    ``on_state(job)`` when the job changes state, ``on_done(job)`` once at its end (done, failed
    or cancelled), ``on_refused(error)`` when the manager will not queue it, ``on_queued(job)``
    once it is queued.
    """
    signals = _DownloadSignals(parent)
    _in_flight.add(signals)
    last = [0.0]

    def progress(value: Any) -> None:  # worker thread
        now = time.monotonic()
        if now - last[0] >= PROGRESS_INTERVAL_S or value.done >= value.total:
            last[0] = now
            signals.progress.emit(value)

    def finished(job: Any) -> None:
        _in_flight.discard(signals)
        on_done(job)

    signals.progress.connect(on_progress)
    if on_state is not None:
        signals.state.connect(on_state)
    signals.done.connect(finished)

    def submit(_ctx: Any) -> Any:
        return downloads.submit(
            spec(), on_progress=progress, on_state=signals.state.emit, on_done=signals.done.emit
        )

    def refused(error: GbdeskError) -> None:
        _in_flight.discard(signals)
        on_refused(error)

    run_task("queue a download", submit, on_done=on_queued, on_failed=refused)
