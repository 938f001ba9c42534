"""Logs: the tail of gbdesk's log file and of the backend's log, refreshed while shown.

Files are read in a worker (only the last 64 KB), so a huge log never stalls the window.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QPlainTextEdit,
    QPushButton,
    QTabWidget,
    QWidget,
)

from gbdesk.paths import app_paths
from gbdesk.ui.state import AppState
from gbdesk.ui.widgets import muted, page_layout
from gbdesk.ui.workers import run_task

TAIL_BYTES = 64_000
REFRESH_MS = 2000


def read_tail(path: Path, limit: int = TAIL_BYTES) -> str:
    """The last ``limit`` bytes of ``path`` as text, starting at a line boundary."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            data = handle.read()
    except FileNotFoundError:
        return ""
    if size > limit and b"\n" in data:
        data = data.split(b"\n", 1)[1]
    return data.decode("utf-8", errors="replace")


class LogsPage(QWidget):
    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        layout = page_layout(self, "Logs", "What gbdesk and the bot backend have been doing.")
        self.tabs = QTabWidget()
        self.app_log = self._log_view()
        self.backend_log = self._log_view()
        self.tabs.addTab(self.app_log, "gbdesk")
        self.tabs.addTab(self.backend_log, "Backend")
        layout.addWidget(self.tabs, 1)
        row = QHBoxLayout()
        self.path_label = muted("", wrap=False)
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        row.addWidget(self.path_label, 1)
        row.addWidget(refresh)
        layout.addLayout(row)
        self.tabs.currentChanged.connect(lambda _i: self._show_path())
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self._reading = False
        self._show_path()

    @staticmethod
    def _log_view() -> QPlainTextEdit:
        view = QPlainTextEdit()
        view.setObjectName("LogView")
        view.setReadOnly(True)
        view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        view.setMaximumBlockCount(5000)
        return view

    def log_paths(self) -> tuple[Path, Path]:
        return app_paths().log_file, self.state.backend_log_path()

    def _show_path(self) -> None:
        self.path_label.setText(str(self.log_paths()[self.tabs.currentIndex()]))

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        self.refresh()
        self._timer.start()

    def hideEvent(self, event) -> None:  # noqa: N802
        super().hideEvent(event)
        self._timer.stop()

    def refresh(self) -> None:
        if self._reading:
            return
        self._reading = True
        app_log, backend_log = self.log_paths()
        run_task(
            "read the logs",
            lambda _ctx: (read_tail(app_log), read_tail(backend_log)),
            on_done=self._show,
            on_finished=self._done_reading,
        )

    def _done_reading(self) -> None:
        self._reading = False

    def _show(self, texts: tuple[str, str]) -> None:
        for view, text, empty in (
            (self.app_log, texts[0], "The log is empty."),
            (self.backend_log, texts[1], "The backend has not written a log yet."),
        ):
            shown = text or empty
            if view.toPlainText() != shown:
                view.setPlainText(shown)
                view.moveCursor(QTextCursor.MoveOperation.End)
