"""The shard heartbeat next to the backend: started when the backend is ready and this node is
registered, stopped with the backend and on Quit.

The beating itself is the core's :func:`gbdesk.shard.service.heartbeat_for_this_node` (a daemon
thread that touches ``last_seen_at`` every 30 s and records what the node offers, measured by
:func:`gbdesk.app.fleet.capacity_source`); this adapter starts it in a worker (reading the
registration and starting the embedded PostgreSQL can take seconds) and turns its callbacks into
Qt signals for the Node page.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from PySide6.QtCore import QObject, Signal

from gbdesk.errors import GbdeskError
from gbdesk.ui.workers import TaskContext, TaskHandle, run_task

log = logging.getLogger(__name__)


def start_heartbeat(
    ctx: TaskContext,
    database_url: str,
    on_beat: Any,
    on_error: Any,
    *,
    on_embedded_started: Any = None,
    capacity: Any = None,
) -> Any:
    """A started heartbeat for this node, or None when it is not registered.

    Raises:
        EmbeddedPostgresError, GbdeskError: the registry cannot be reached or started.
    """
    from gbdesk.app.fleet import start_node_heartbeat

    heartbeat = start_node_heartbeat(
        database_url,
        capacity=capacity,
        on_beat=on_beat,
        on_error=on_error,
        on_embedded_started=on_embedded_started,
        cancelled=lambda: ctx.cancelled,
    )
    ctx.check_cancelled()  # stopped meanwhile: start_node_heartbeat left nothing beating
    return heartbeat


class NodeHeartbeat(QObject):
    """Runs the node's heartbeat while wanted; ``beat`` and ``failed`` reach the GUI thread."""

    beat = Signal(object)  # datetime of the last beat (last_seen_at)
    failed = Signal(object)  # GbdeskError (a beat, or starting the heartbeat)
    running_changed = Signal(bool)

    def __init__(self, state: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._state = state
        self._heartbeat: Any = None
        self._task: TaskHandle | None = None
        self.last_beat: datetime | None = None
        self.beat.connect(self._record)

    @property
    def running(self) -> bool:
        return self._heartbeat is not None

    def start(self) -> None:
        """Start beating when this node is registered (nothing happens otherwise)."""
        if self._heartbeat is not None or self._task is not None:
            return
        from gbdesk.app.fleet import capacity_source

        settings = self._state.settings
        self._task = run_task(
            "start the heartbeat",
            lambda ctx: start_heartbeat(
                ctx,
                settings.database_url,
                self.beat.emit,
                self._emit_error,
                on_embedded_started=self._state.note_embedded_started,
                capacity=capacity_source(settings, self._state.backend_api_key()),
            ),
            on_done=self._on_started,
            on_failed=self.failed.emit,
            on_finished=self._on_finished,
        )

    def stop(self, *, wait: bool = False) -> None:
        """Stop beating. A beat in progress is waited for in a worker, or here with ``wait``
        (Quit)."""
        if self._task is not None:
            self._task.cancel()
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is None:
            return
        if wait:
            heartbeat.stop()
        else:
            run_task("stop the heartbeat", lambda _ctx: heartbeat.stop())
        self.running_changed.emit(False)

    def _emit_error(self, error: GbdeskError) -> None:
        self.failed.emit(error)

    def _on_started(self, heartbeat: Any) -> None:
        if heartbeat is None:
            return
        self._heartbeat = heartbeat
        self.running_changed.emit(True)

    def _on_finished(self) -> None:
        self._task = None

    def _record(self, when: datetime) -> None:
        self.last_beat = when
