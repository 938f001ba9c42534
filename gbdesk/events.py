"""JSON-lines events between a child process and its parent (`gbdesk serve --events`).

Each line is one JSON object with a ``type`` (:class:`EventType`) and that type's fields. The
child writes them on its own channel (its original stdout; everything else it prints, native
llama.cpp output included, goes to stderr, which is the log); the parent reads typed events and
typed errors (:meth:`gbdesk.errors.GbdeskError.from_json`) and never parses prose.

=========  ==========================================================================
type       fields
=========  ==========================================================================
listening  ``url``: the port is bound; /health answers 503 while the model loads
loading    ``model``: the file being loaded
ready      ``url``, ``model_id``, ``n_ctx``, ``parallel``: requests are served
error      ``error``: :meth:`GbdeskError.to_json`; the child exits next, with its code
=========  ==========================================================================

With ``--lifeline`` the child also watches its stdin, a pipe whose only write end the parent
holds: the pipe ends when the parent exits, however it exits (Quit, a crash, a kill), and the
child then stops as on SIGTERM instead of living on as an orphan that keeps the port and the
memory (the next launch would find its own port taken).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from gbdesk.enums import StrEnum
from gbdesk.errors import GbdeskError

EVENTS_FLAG = "--events"
LIFELINE_FLAG = "--lifeline"
_STDIN_FD = 0


class EventType(StrEnum):
    LISTENING = "listening"
    LOADING = "loading"
    READY = "ready"
    ERROR = "error"


@dataclass(frozen=True)
class ChildEvent:
    """One event a child wrote."""

    type: EventType
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def error(self) -> GbdeskError | None:
        """The typed error of an ``error`` event."""
        raw = self.data.get("error")
        if self.type is not EventType.ERROR or not isinstance(raw, dict):
            return None
        return GbdeskError.from_json(raw)


def encode(event_type: EventType, **data: Any) -> bytes:
    """One line: ``{"type": ..., **data}`` and a newline."""
    return (json.dumps({"type": event_type.value, **data}, ensure_ascii=True) + "\n").encode()


def decode(line: bytes | str) -> ChildEvent | None:
    """The event on ``line``, or None when the line is not one (then it is plain output)."""
    try:
        raw = json.loads(line)
        event_type = EventType(raw.pop("type"))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return ChildEvent(event_type, raw)


class EventChannel:
    """Where a child writes its events; safe to use from any thread. Without a stream (a
    `gbdesk serve` typed by hand) events go nowhere."""

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def emit(self, event_type: EventType, **data: Any) -> None:
        if self._stream is None:
            return
        line = encode(event_type, **data)
        with self._lock:
            try:
                self._stream.write(line)
                self._stream.flush()
            except (OSError, ValueError):  # the parent went away: nothing left to tell
                pass

    def error(self, error: GbdeskError) -> None:
        self.emit(EventType.ERROR, error=error.to_json())


def stdout_channel() -> EventChannel:
    """Take this process's stdout for events; what else writes to fd 1 now goes to stderr.

    Raises:
        OSError: the file descriptors cannot be duplicated.
    """
    sys.stdout.flush()
    events_fd = os.dup(1)
    os.dup2(2, 1)
    return EventChannel(os.fdopen(events_fd, "wb", buffering=0))


def stop_when_parent_exits(stop: Callable[[], None]) -> threading.Thread:
    """Call ``stop`` once stdin ends (the parent holding the pipe exited), from a daemon thread.

    Whatever the parent writes is read and dropped; a stdin that cannot be read counts as ended.
    """

    def watch() -> None:
        try:
            while os.read(_STDIN_FD, 4096):
                pass
        except OSError:
            pass
        stop()

    thread = threading.Thread(target=watch, name="gbdesk-parent-watch", daemon=True)
    thread.start()
    return thread
