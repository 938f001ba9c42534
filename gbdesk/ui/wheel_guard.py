"""Spin boxes and combo boxes take the mouse wheel only when they have the keyboard focus.

Qt lets a wheel turn change the value of any spin or combo box under the pointer, so scrolling
a page changed settings on the way (Parallel chats went from 4 to Automatic on the Settings
page). One application-wide event filter fixes it for every such box in the app, the ones
pages and wizard steps build now and later: an unfocused box passes the wheel on to the page
around it (which scrolls), and a wheel turn no longer gives a box the focus.
:class:`gbdesk.ui.state.AppState` installs it, so every window gets it.
"""

from __future__ import annotations

from typing import cast

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QAbstractSpinBox, QComboBox, QWidget

_GUARDED = (QAbstractSpinBox, QComboBox)


class WheelGuard(QObject):
    """The event filter (one per application, see :func:`install_wheel_guard`)."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if not isinstance(watched, _GUARDED):
            return False
        kind = event.type()
        if kind == QEvent.Type.Wheel and not watched.hasFocus():
            # Ignored and filtered: Qt hands a real wheel turn to the parents (the scroll area);
            # one sent by a program (not spontaneous) Qt does not pass on, so it is done here.
            event.ignore()
            if not event.spontaneous():
                _pass_to_parents(watched, cast(QWheelEvent, event))
            return True
        if kind == QEvent.Type.Polish and watched.focusPolicy() == Qt.FocusPolicy.WheelFocus:
            # Qt's default WheelFocus would focus the box on the first turn, then change it.
            watched.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        return False


def _pass_to_parents(widget: QWidget, event: QWheelEvent) -> None:
    """Offer ``event`` to ``widget``'s parents in turn until one takes it (a scroll area)."""
    position = event.position()
    child, parent = widget, widget.parentWidget()
    while parent is not None and not child.isWindow():
        position = position + QPointF(child.pos())
        child, parent = parent, parent.parentWidget()
        copy = QWheelEvent(
            position,
            event.globalPosition(),
            event.pixelDelta(),
            event.angleDelta(),
            event.buttons(),
            event.modifiers(),
            event.phase(),
            event.inverted(),
        )
        copy.ignore()
        QCoreApplication.sendEvent(child, copy)
        if copy.isAccepted():
            return


def install_wheel_guard() -> WheelGuard | None:
    """Install the guard on the running application (once; later calls return the same one).

    Returns None when no application exists yet.
    """
    app = QCoreApplication.instance()
    if app is None:
        return None
    existing = app.findChild(WheelGuard)
    if isinstance(existing, WheelGuard):
        return existing
    guard = WheelGuard(app)
    app.installEventFilter(guard)
    return guard
