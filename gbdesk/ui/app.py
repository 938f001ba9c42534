"""Start the desktop app: the first-run wizard, or the main window.

Start-up stays lean: only QtCore/QtGui/QtWidgets and gbdesk's light modules are imported before
the first window is shown; pages build themselves (and import the core) when first opened.

``GBDESK_EXIT_ON_FIRST_SHOW=1`` makes the app print ``first-window-shown <seconds>`` when its
first window has been painted (and ``first-page-built <seconds>`` when the main window's first
page is in place), then quit; ``bench/gui_bench.py`` times cold starts with it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import traceback
from collections.abc import Sequence
from types import TracebackType
from typing import cast

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QDialog, QWidget

EXIT_ON_SHOW_ENV = "GBDESK_EXIT_ON_FIRST_SHOW"
_START = time.perf_counter()
log = logging.getLogger("gbdesk.ui")
_windows: list[QWidget] = []


def install_exception_hook() -> None:
    """Show uncaught exceptions in a dialog with the log file's path instead of vanishing."""

    def hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        from PySide6.QtWidgets import QMessageBox

        from gbdesk.errors import GbdeskError
        from gbdesk.paths import app_paths

        log.error("uncaught exception", exc_info=(kind, value, tb))
        if QApplication.instance() is None:
            traceback.print_exception(kind, value, tb)
            return
        box = QMessageBox(QMessageBox.Icon.Critical, "gbdesk hit a problem", "")
        if isinstance(value, GbdeskError):
            box.setText(value.message)
            detail = value.fix or ""
        else:
            from gbdesk.errors import without_errno

            box.setText(f"Something unexpected went wrong: {without_errno(str(value))}")
            detail = ""
        box.setInformativeText(
            (f"Fix: {detail}\n\n" if detail else "")
            + f"The details are in the log file:\n{app_paths().log_file}"
        )
        box.setDetailedText("".join(traceback.format_exception(kind, value, tb)))
        box.exec()

    sys.excepthook = hook


def report_and_quit(what: str, *, quit_app: bool = True) -> None:
    """Print ``<what> <seconds since start>`` (and quit): the start-up benchmark's probe."""
    with contextlib.suppress(OSError):  # the benchmark stopped reading
        print(f"{what} {time.perf_counter() - _START:.4f}", flush=True)
    if quit_app:
        QTimer.singleShot(0, QApplication.quit)


class _AfterFirstPaint(QObject):
    """Runs ``callbacks`` once the window has been painted for the first time.

    What the first window does not need (the log file, warnings) waits until it is on screen.
    With ``GBDESK_EXIT_ON_FIRST_SHOW=1`` it also prints ``first-window-shown <s>``; the main
    window then quits once its first page is built (``first-page-built <s>``), the wizard at once.
    """

    def __init__(self, window: QWidget, callbacks: list) -> None:
        super().__init__(window)
        self._callbacks = callbacks

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Paint:
            watched.removeEventFilter(self)
            if os.environ.get(EXIT_ON_SHOW_ENV) == "1":
                waits_for_page = hasattr(watched, "_build_current_page")
                report_and_quit("first-window-shown", quit_app=not waits_for_page)
            for callback in self._callbacks:
                QTimer.singleShot(0, callback)
        return False


def create_first_window(state, *, force_wizard: bool = False) -> QWidget:
    """The wizard on first run (or when asked), else the main window."""
    if force_wizard or not state.settings.first_run_done:
        from gbdesk.ui.wizard import FirstRunWizard

        return FirstRunWizard(state)
    from gbdesk.ui.main_window import MainWindow

    return MainWindow(state)


def main(argv: Sequence[str] | None = None) -> int:
    """Open the wizard or the main window and run the Qt event loop until Quit."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # Fusion through the command line: the style is then made in C++ without building
    # PySide's Python enums for QStyle (setStyle from Python does, ~7 ms before the first paint).
    # instance() is typed as the QCoreApplication base; gbdesk only ever makes a QApplication.
    existing = cast(QApplication | None, QApplication.instance())
    fusion_given = existing is None
    app = existing or QApplication([sys.argv[0], "-style", "Fusion", *argv])
    app.setApplicationName("gbdesk")
    app.setApplicationDisplayName("gbdesk")
    app.setDesktopFileName("gbdesk")
    # The tray keeps the app alive when the main window closes; Quit ends it.
    app.setQuitOnLastWindowClosed(False)

    from gbdesk.ui.single_instance import hand_over

    if hand_over(argv):  # one gbdesk per user: the running one raises its window
        return 0

    from gbdesk.ui.quit_signals import quit_on_signals
    from gbdesk.ui.resources_access import app_icon
    from gbdesk.ui.state import AppState
    from gbdesk.ui.theme import apply_theme, follow_system_theme

    install_exception_hook()
    quit_on_signals(app)  # a logout or `kill` quits as Quit does: the backend stops with us
    app.setWindowIcon(app_icon())
    apply_theme(app, set_style=not fusion_given)
    follow_system_theme(app)

    state = AppState(parent=app)
    window = create_first_window(state, force_wizard="--wizard" in argv)
    _windows.append(window)
    if isinstance(window, QDialog):  # the wizard: then the main window, or quit if closed
        window.accepted.connect(lambda: _open_main_window(state, app, "chat"))
        window.rejected.connect(lambda: _after_wizard_closed(state, app))
    # Listening for later launches waits for the first paint, like the log file.
    after_paint = [_setup_logging, lambda: _listen_for_launches(state, app)]
    if state.settings_error is not None:
        after_paint.append(lambda: _warn_settings(window, state.settings_error))
    if "--background" not in argv and os.environ.get(EXIT_ON_SHOW_ENV) != "1":
        # A relaunch serves again what it served before Quit (the resume_backend setting).
        after_paint.append(lambda: _resume_serving(state))
    if "--background" not in argv and os.environ.get(EXIT_ON_SHOW_ENV) != "1":
        # No calibration of this CPU yet: measure it in the background (the wizard shows it).
        after_paint.append(lambda: _measure_later(state))
    window.installEventFilter(_AfterFirstPaint(window, after_paint))
    app.aboutToQuit.connect(state.shutdown)
    # --background (start at login): the backend and only the tray icon, when there is a tray.
    tray = getattr(window, "tray", None)
    if "--background" in argv and state.settings.first_run_done:
        # Start at login: serve the model (the heartbeat follows once it is ready).
        state.backend.start()
    if "--background" not in argv or tray is None:
        window.show()
    if "--background" in argv and not window.isVisible():
        QTimer.singleShot(0, _setup_logging)  # no paint will come
        QTimer.singleShot(0, lambda: _listen_for_launches(state, app))
    return app.exec()


def _resume_serving(state) -> None:
    state.resume_serving()  # the Dashboard says so when it did


# The first-run measurement waits this long after the first paint, so the window and the
# hardware probe get the processor first.
MEASURE_DELAY_MS = 2000


def _measure_later(state) -> None:
    QTimer.singleShot(MEASURE_DELAY_MS, lambda: state.calibration.start_if_needed(state.profile))


def _listen_for_launches(state, app: QApplication) -> None:
    from gbdesk.ui.single_instance import InstanceServer

    instance = InstanceServer(lambda args: _on_second_launch(state, app, args), parent=app)
    app.aboutToQuit.connect(instance.close)


def _on_second_launch(state, app: QApplication, argv: list[str]) -> None:
    """Another launch of gbdesk: show this app's window instead (the wizard with --wizard)."""
    from shiboken6 import isValid

    alive = [w for w in _windows if isValid(w)]
    window = next((w for w in reversed(alive) if w.isVisible()), None)
    if window is None:
        window = next((w for w in reversed(alive) if hasattr(w, "bring_to_front")), None)
    if window is None:
        window = alive[-1] if alive else None
    if window is None:
        return
    if "--wizard" in argv and hasattr(window, "open_wizard"):
        window.open_wizard()
    if hasattr(window, "bring_to_front"):
        window.bring_to_front()
    else:
        window.showNormal()
        window.raise_()
        window.activateWindow()


def _setup_logging() -> None:
    from gbdesk.logs import setup_logging

    try:
        setup_logging(to_stderr=False)
    except OSError as exc:
        from gbdesk.errors import os_error_words

        print(f"warning: cannot write the log file: {os_error_words(exc)}", file=sys.stderr)


def _open_main_window(state, app: QApplication, page: str) -> None:
    from gbdesk.ui.main_window import MainWindow

    window = MainWindow(state, initial_page=page)
    _windows.append(window)  # a Python reference keeps it alive
    window.show()


def _after_wizard_closed(state, app: QApplication) -> None:
    """Closing the wizard on first run ends the app; later runs go on to the main window."""
    if state.settings.first_run_done:
        _open_main_window(state, app, "dashboard")
    else:
        app.quit()


def _warn_settings(parent: QWidget, error) -> None:
    from PySide6.QtWidgets import QMessageBox

    QMessageBox.warning(parent, "Settings", f"{error.message}\n\nFix: {error.fix}")
