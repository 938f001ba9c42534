"""The main window: a sidebar of pages, a stack that builds each page when first opened, the tray.

Pages are imported and constructed lazily, so start-up pays only for the page that is shown.
Ctrl+1..6 switch pages. Closing the window hides it to the tray (the backend keeps serving); Quit
in the menu or the tray stops the backend and ends the app.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass

from PySide6.QtCore import QSize, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QPaintEvent
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMenu,
    QStackedWidget,
    QSystemTrayIcon,
    QWidget,
)

from gbdesk.ui.resources_access import app_icon, icon
from gbdesk.ui.screen_fit import fit_to_screen
from gbdesk.ui.state import AppState
from gbdesk.ui.theme import current_palette

# The size the window opens at where the screen has room, and the smallest every page holds at
# (both fit a 1024x600 screen; smaller work areas shrink them, see gbdesk/ui/screen_fit.py).
WINDOW_SIZE = QSize(1120, 740)
MINIMUM_SIZE = QSize(800, 480)


@dataclass(frozen=True)
class PageSpec:
    key: str
    title: str
    icon_name: str
    module: str
    class_name: str


PAGES: tuple[PageSpec, ...] = (
    PageSpec("dashboard", "Dashboard", "dashboard", "gbdesk.ui.pages.dashboard", "DashboardPage"),
    PageSpec("models", "Models", "models", "gbdesk.ui.pages.models", "ModelsPage"),
    PageSpec("chat", "Chat", "chat", "gbdesk.ui.pages.chat", "ChatPage"),
    PageSpec("node", "Node", "node", "gbdesk.ui.pages.node", "NodePage"),
    PageSpec("settings", "Settings", "settings", "gbdesk.ui.pages.settings", "SettingsPage"),
    PageSpec("logs", "Logs", "logs", "gbdesk.ui.pages.logs", "LogsPage"),
)


class MainWindow(QMainWindow):
    """Sidebar navigation over lazily built pages, a menu, shortcuts and the tray icon."""

    # (action, key) pairs attached after the first paint (finish_start)
    _shortcuts: list[tuple[QAction, QKeySequence | QKeySequence.StandardKey]]

    def __init__(self, state: AppState, *, initial_page: str = "dashboard") -> None:
        super().__init__()
        self.state = state
        self._quitting = False
        self.setWindowTitle("gbdesk")
        self.setWindowIcon(app_icon())
        fit_to_screen(self, WINDOW_SIZE, MINIMUM_SIZE)

        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.sidebar = QListWidget()
        self.sidebar.setObjectName("Sidebar")
        self.sidebar.setFixedWidth(196)
        self.sidebar.setIconSize(QSize(18, 18))
        self.stack = QStackedWidget()
        layout.addWidget(self.sidebar)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        self._pages: dict[str, QWidget] = {}
        self._placeholders: dict[str, QWidget] = {}
        for spec in PAGES:
            item = QListWidgetItem(icon(spec.icon_name, current_palette().muted), spec.title)
            self.sidebar.addItem(item)
            holder = QWidget()  # replaced by the real page on first visit
            self._placeholders[spec.key] = holder
            self.stack.addWidget(holder)
        self.sidebar.currentRowChanged.connect(self._on_row_changed)

        self._build_menu()
        self.tray: QSystemTrayIcon | None = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            self._build_tray()
        # The first page is built right after the window's first paint (start-up shows the
        # frame first); show_page() before that builds it at once.
        row = next(i for i, s in enumerate(PAGES) if s.key == initial_page)
        self.sidebar.blockSignals(True)
        self.sidebar.setCurrentRow(row)
        self.sidebar.blockSignals(False)
        self.stack.setCurrentWidget(self._placeholders[initial_page])
        self._painted = False

    # --- pages ---------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        super().paintEvent(event)
        if not self._painted:
            self._painted = True
            QTimer.singleShot(0, self._build_current_page)

    def finish_start(self) -> None:
        """What the first paint did not need: keyboard shortcuts (idempotent)."""
        shortcuts, self._shortcuts = self._shortcuts, []
        for action, sequence in shortcuts:
            action.setShortcut(sequence)

    def _build_current_page(self) -> None:
        self.finish_start()
        self.show_page(self.current_page_key())
        from gbdesk.ui.app import EXIT_ON_SHOW_ENV, report_and_quit

        if os.environ.get(EXIT_ON_SHOW_ENV) == "1":  # bench/gui_bench.py
            report_and_quit("first-page-built")

    def page(self, key: str) -> QWidget:
        """The page ``key``, built now if it was not yet."""
        if key not in self._pages:
            spec = next(s for s in PAGES if s.key == key)
            module = importlib.import_module(spec.module)
            page = getattr(module, spec.class_name)(self.state)
            index = self.stack.indexOf(self._placeholders[key])
            self.stack.removeWidget(self._placeholders[key])
            self._placeholders.pop(key).deleteLater()
            self.stack.insertWidget(index, page)
            self._pages[key] = page
        return self._pages[key]

    def built_pages(self) -> tuple[str, ...]:
        return tuple(self._pages)

    def show_page(self, key: str) -> QWidget:
        row = next(i for i, s in enumerate(PAGES) if s.key == key)
        page = self.page(key)
        if self.sidebar.currentRow() != row:
            self.sidebar.setCurrentRow(row)
        self.stack.setCurrentWidget(page)
        return page

    def current_page_key(self) -> str:
        return PAGES[self.sidebar.currentRow()].key

    def _on_row_changed(self, row: int) -> None:
        if row >= 0:
            self.show_page(PAGES[row].key)

    # --- menu, shortcuts, tray -----------------------------------------------------------

    def _build_menu(self) -> None:
        # Shortcuts are attached right after the first paint (see _finish_start): setting the
        # first one makes PySide build every Qt.* enum, ~15 ms that the first window can skip.
        self._shortcuts = []
        file_menu = self.menuBar().addMenu("&File")
        wizard = QAction("Run the setup &wizard…", self)
        wizard.triggered.connect(self.open_wizard)
        file_menu.addAction(wizard)
        file_menu.addSeparator()
        quit_action = QAction("&Quit", self)
        self._shortcuts.append((quit_action, QKeySequence.StandardKey.Quit))
        quit_action.triggered.connect(self.quit_app)
        file_menu.addAction(quit_action)

        view_menu = self.menuBar().addMenu("&View")
        for number, spec in enumerate(PAGES, start=1):
            action = QAction(spec.title, self)
            self._shortcuts.append((action, QKeySequence(f"Ctrl+{number}")))
            action.triggered.connect(lambda _checked=False, key=spec.key: self.show_page(key))
            view_menu.addAction(action)
            self.addAction(action)  # works even when the menu bar is hidden (macOS, full screen)

        help_menu = self.menuBar().addMenu("&Help")
        logs = QAction("Open the &log folder", self)
        logs.triggered.connect(self._open_log_folder)
        help_menu.addAction(logs)
        about = QAction("&About gbdesk", self)
        about.triggered.connect(self._about)
        help_menu.addAction(about)

    def _build_tray(self) -> None:
        self.tray = QSystemTrayIcon(app_icon(), self)
        self.tray.setToolTip("gbdesk: local bot backend")
        menu = QMenu(self)
        show = menu.addAction("Show gbdesk")
        show.triggered.connect(self.bring_to_front)
        self.tray_backend_action = menu.addAction("Start the backend")
        self.tray_backend_action.triggered.connect(self._toggle_backend)
        self.state.backend.state_changed.connect(self._on_backend_for_tray)
        self._on_backend_for_tray(self.state.backend.view)
        menu.addSeparator()
        self.tray_quit_action = menu.addAction("Quit (stops the bot backend)")
        self.tray_quit_action.triggered.connect(self.quit_app)
        menu.aboutToShow.connect(
            lambda: self.tray_quit_action.setText(f"Quit (stops {self.state.quit_summary()})")
        )
        self.tray.setContextMenu(menu)
        self.tray.activated.connect(self._on_tray_activated)
        self.tray.show()

    def _on_backend_for_tray(self, view) -> None:  # view: a BackendView
        if self.tray is not None:
            self.tray.setToolTip(f"gbdesk: bot backend {view.text.lower()}")
        self.tray_backend_action.setText(
            "Stop the backend" if view.running else "Start the backend"
        )
        from gbdesk.backend.supervisor import BackendState  # not needed before the first paint

        self.tray_backend_action.setEnabled(view.phase is not BackendState.STOPPING)

    def _toggle_backend(self) -> None:
        backend = self.state.backend
        backend.stop() if backend.is_running() else backend.start()

    def _on_tray_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            self.bring_to_front()

    def bring_to_front(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    def open_wizard(self) -> None:
        from gbdesk.ui.wizard import FirstRunWizard

        wizard = FirstRunWizard(self.state, parent=self)
        wizard.finished_to_chat.connect(lambda: self.show_page("chat"))
        wizard.open()

    def _open_log_folder(self) -> None:
        from PySide6.QtCore import QUrl
        from PySide6.QtGui import QDesktopServices

        from gbdesk.paths import app_paths

        QDesktopServices.openUrl(QUrl.fromLocalFile(str(app_paths().log_dir)))

    def _about(self) -> None:
        from PySide6.QtWidgets import QMessageBox

        from gbdesk import __version__

        QMessageBox.about(
            self,
            "About gbdesk",
            f"<b>gbdesk {__version__}</b><p>General Bots desktop: run a local model as your "
            "bot's backend and register this machine as a shard.</p>",
        )

    def quit_app(self) -> None:
        """Stop the backend and the heartbeat, and end the app."""
        self._quitting = True
        if self.tray is not None:
            self.tray.hide()
        self.close()
        self.state.shutdown()
        QApplication.quit()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if self.tray is not None and self.tray.isVisible() and not self._quitting:
            # Keep serving in the background; the tray's Quit ends the app.
            self.hide()
            self.tray.showMessage(
                "gbdesk is still running",
                "The bot backend keeps serving. Use Quit in the tray menu to stop it.",
                QSystemTrayIcon.MessageIcon.Information,
                3000,
            )
            event.ignore()
            return
        event.accept()
        if not self._quitting:
            QApplication.quit()
