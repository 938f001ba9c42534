"""Logs: the tail of gbdesk's log file and of the backend's log, refreshed while shown.

Files are read in a worker (only the last 64 KB), so a huge log never stalls the window. A
level filter (errors, warnings, info, everything) and a text filter narrow what is shown; lines
without a level of their own (a traceback's) follow the line they continue.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTabWidget,
    QWidget,
)

from gbdesk.paths import app_paths
from gbdesk.ui.state import AppState
from gbdesk.ui.widgets import muted, page_layout, scrolls_sideways
from gbdesk.ui.workers import run_task

TAIL_BYTES = 64_000
REFRESH_MS = 2000
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# The level filter's choices: (label, lowest level shown).
LEVEL_CHOICES = (
    ("Info and above", "INFO"),
    ("Warnings and errors", "WARNING"),
    ("Errors only", "ERROR"),
    ("Everything (debug too)", "DEBUG"),
)


def line_level(line: str) -> str | None:
    """The level a log line names ("2026-… WARNING gbdesk…: …" or "error: …"), else None."""
    words = line.split(maxsplit=3)
    for word in words[:3]:
        if word in LEVELS:
            return word
    head = line.split(":", 1)[0].strip().upper()
    if head in LEVELS or head == "WARN":
        return "WARNING" if head == "WARN" else head
    return None


def filter_log(text: str, lowest: str = "INFO", needle: str = "") -> str:
    """The lines of ``text`` at ``lowest`` or above that contain ``needle`` (any case)."""
    floor = LEVELS.index(lowest)
    needle = needle.casefold()
    shown: list[str] = []
    keep = True
    for line in text.splitlines():
        level = line_level(line)
        if level is not None:
            keep = LEVELS.index(level) >= floor
        if keep and (not needle or needle in line.casefold()):
            shown.append(line)
    return "\n".join(shown)


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
        filters = QHBoxLayout()
        filters.addWidget(QLabel("Show"))
        self.level = QComboBox()
        for label, level in LEVEL_CHOICES:
            self.level.addItem(label, level)
        self.level.currentIndexChanged.connect(lambda _i: self._show(self._texts))
        filters.addWidget(self.level)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Find in the log…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(lambda _t: self._show(self._texts))
        filters.addWidget(self.search, 1)
        layout.addLayout(filters)
        self._texts: tuple[str, str] = ("", "")
        self.tabs = QTabWidget()
        self.app_log = self._log_view()
        self.backend_log = self._log_view()
        self.tabs.addTab(self.app_log, "gbdesk")
        self.tabs.addTab(self.backend_log, "Backend")
        layout.addWidget(self.tabs, 1)
        row = QHBoxLayout()
        self.path_label = muted("")
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
        # Long lines scroll sideways (a log line is not reflowed), but a view always opens at
        # its left edge, where the time stamps are.
        scrolls_sideways(view)
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
        self._texts = texts
        lowest = self.level.currentData() or "INFO"
        needle = self.search.text().strip()
        for view, text, empty in (
            (self.app_log, texts[0], "The log is empty."),
            (self.backend_log, texts[1], "The backend has not written a log yet."),
        ):
            shown = filter_log(text, lowest, needle) if text else ""
            if text and not shown:
                shown = "No line matches the filter."
            shown = shown or empty
            if view.toPlainText() != shown:
                view.setPlainText(shown)
                # The newest line in view, from its start (its time stamp).
                view.moveCursor(QTextCursor.MoveOperation.End)
                view.moveCursor(QTextCursor.MoveOperation.StartOfLine)
                view.horizontalScrollBar().setValue(0)
