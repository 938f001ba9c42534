"""``emit(signal, *args)``: emit a Qt signal from Python without PySide6 6.12's refcount leak.

PySide6 6.12.0's ``SignalInstance.emit()`` returns ``True`` without taking a reference to it, so
each emit from Python takes one reference away from ``True``. On Python 3.11, where ``True`` is
not immortal, a few thousand emits (a streamed chat emits one per token) end in "Fatal Python
error: bool_dealloc". Every emit in gbdesk/ui goes through :func:`emit`, which gives the
reference back when (and only when) this PySide6 build is measured to leak it.
"""

from __future__ import annotations

import sys
from typing import Any

from PySide6.QtCore import QObject, Signal


class _Probe(QObject):
    ping = Signal()


def _emit_leaks_true() -> bool:
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(16):
        probe.ping.emit()
    return before - sys.getrefcount(True) >= 8


def _give_back_true() -> None:
    import ctypes

    ctypes.pythonapi.Py_IncRef(ctypes.py_object(True))


_LEAKS_TRUE = _emit_leaks_true()
if _LEAKS_TRUE:
    for _ in range(16):  # the probe's own emits
        _give_back_true()


def emit(signal: Any, *args: Any) -> None:
    """``signal.emit(*args)``, keeping ``True``'s reference count right."""
    signal.emit(*args)
    if _LEAKS_TRUE:
        _give_back_true()


def emitter(signal: Any) -> Any:
    """A plain callback that emits ``signal`` (for core callbacks such as ``on_state``)."""

    def call(*args: Any) -> None:
        emit(signal, *args)

    return call
