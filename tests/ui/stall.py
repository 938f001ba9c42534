"""An event-loop stall monitor: a 5 ms timer that records the largest gap between its ticks."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer


class StallMonitor:
    """While active, ``largest_ms`` is the longest time the GUI thread did not run the timer."""

    def __init__(self, interval_ms: int = 5) -> None:
        self.largest_ms = 0.0
        self.ticks = 0
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)
        self._last = 0.0

    def _tick(self) -> None:
        now = time.perf_counter()
        self.largest_ms = max(self.largest_ms, (now - self._last) * 1000)
        self._last = now
        self.ticks += 1

    def __enter__(self) -> StallMonitor:
        self._last = time.perf_counter()
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.stop()
