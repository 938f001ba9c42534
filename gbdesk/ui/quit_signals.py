"""SIGTERM (a logout, a service manager, `kill`) and Ctrl+C quit the app as Quit does.

Python's default for SIGTERM ends the process at once: the backend and the worker it started
would be left to notice it on their own (their lifeline, :mod:`gbdesk.events`), and the
aboutToQuit work (saving, the heartbeat's last beat) would not run. A signal handler written
in Python only runs when Python gets control, and Qt's event loop is C++: the signal's wakeup
byte on a socket wakes the loop (a QSocketNotifier), and the handler then asks Qt to quit.
"""

from __future__ import annotations

import signal
import socket

from PySide6.QtCore import QSocketNotifier, QTimer
from PySide6.QtWidgets import QApplication

_QUIT_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, name)
)


def quit_on_signals(app: QApplication) -> None:
    """Make SIGTERM, SIGINT and SIGHUP call ``app.quit()`` through the event loop."""
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    previous = {signum: signal.getsignal(signum) for signum in _QUIT_SIGNALS}
    notifier = QSocketNotifier(reader.fileno(), QSocketNotifier.Type.Read, app)

    def drain() -> None:  # running Python here is what lets the handler below run
        try:
            while reader.recv(512):
                pass
        except BlockingIOError:
            pass

    notifier.activated.connect(drain)
    for signum in _QUIT_SIGNALS:
        signal.signal(signum, lambda _signum, _frame: QTimer.singleShot(0, app.quit))

    def release() -> None:  # as it was before: an app made in a test leaves no trace
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(previous_fd)
        notifier.setEnabled(False)
        reader.close()
        writer.close()

    app.aboutToQuit.connect(release)
