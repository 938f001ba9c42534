"""Window sizes that fit the screen: the size a window opens at and its minimum, bounded by the
screen's work area (the screen less its task bars and docks) and the window manager's frame.

A 1366x768 laptop leaves about 1366x728 to windows, a 1024x600 netbook 1024x560; a window taller
than that opens with its buttons below the task bar, out of reach.
"""

from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget

# What a window manager adds around a window: a title bar and borders (a generous guess: the
# frame is not known before the window is shown).
FRAME_ALLOWANCE = QSize(16, 48)


def fitted_size(preferred: QSize, work_area: QSize) -> QSize:
    """``preferred``, made smaller where the work area (less the frame) is smaller."""
    room = QSize(
        work_area.width() - FRAME_ALLOWANCE.width(), work_area.height() - FRAME_ALLOWANCE.height()
    )
    return preferred.boundedTo(room)


def fit_to_screen(window: QWidget, preferred: QSize, minimum: QSize) -> None:
    """Give ``window`` its minimum and its opening size, both inside the work area of the screen
    it will open on (the primary one; the whole preferred size when there is no screen)."""
    screen = window.screen() or QGuiApplication.primaryScreen()
    if screen is None:
        window.setMinimumSize(minimum)
        window.resize(preferred)
        return
    area = screen.availableGeometry().size()
    window.setMinimumSize(fitted_size(minimum, area))
    window.resize(fitted_size(preferred, area))
