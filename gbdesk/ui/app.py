"""Start the desktop app."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Open the main window and run the Qt event loop until it closes."""
    from PySide6.QtWidgets import QApplication, QMainWindow

    app = QApplication.instance() or QApplication(list(argv or sys.argv[:1]))
    window = QMainWindow()
    window.setWindowTitle("gbdesk")
    window.resize(1000, 700)
    window.show()
    return app.exec()
