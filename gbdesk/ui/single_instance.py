"""One gbdesk per user: a second launch hands its request to the running app and exits.

The first app listens on a :class:`QLocalServer` named after the user and gbdesk's config
folder (so test runs with their own ``GBDESK_HOME`` do not meet); a later launch connects, sends
its arguments as one line of JSON, and the running app raises its window (or opens the wizard
when asked). A server left behind by a crashed app is removed when nothing answers it.
"""

from __future__ import annotations

import getpass
import hashlib
import json
from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject
from PySide6.QtNetwork import QLocalServer, QLocalSocket

CONNECT_TIMEOUT_MS = 500


def server_name() -> str:
    """The local server's name for this user and this gbdesk home."""
    from gbdesk.paths import app_paths

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name (a container's bare uid)
        user = "user"
    digest = hashlib.sha256(f"{user}\0{app_paths().config_dir}".encode()).hexdigest()[:16]
    return f"gbdesk-{digest}"


def hand_over(argv: Sequence[str], *, name: str | None = None) -> bool:
    """Give ``argv`` to a gbdesk already running; True when one took it (then exit)."""
    socket = QLocalSocket()
    socket.connectToServer(name or server_name())
    if not socket.waitForConnected(CONNECT_TIMEOUT_MS):
        return False
    socket.write((json.dumps({"argv": list(argv)}) + "\n").encode("utf-8"))
    while socket.bytesToWrite() and socket.waitForBytesWritten(CONNECT_TIMEOUT_MS):
        pass
    # The running app answers "ok" once it has the request.
    answered = socket.waitForReadyRead(5 * CONNECT_TIMEOUT_MS) and socket.readAll().size() > 0
    socket.disconnectFromServer()
    return bool(answered)


class InstanceServer(QObject):
    """Listens for later launches; calls ``on_request(argv)`` for each one."""

    def __init__(
        self,
        on_request: Callable[[list[str]], None],
        *,
        name: str | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._on_request = on_request
        self.server = QLocalServer(self)
        self.server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self.name = name or server_name()
        if not self.server.listen(self.name):
            QLocalServer.removeServer(self.name)  # left behind by an app that crashed
            self.server.listen(self.name)
        self.server.newConnection.connect(self._on_connection)

    @property
    def listening(self) -> bool:
        return self.server.isListening()

    def close(self) -> None:
        self.server.close()

    def _on_connection(self) -> None:
        while self.server.hasPendingConnections():
            socket = self.server.nextPendingConnection()
            socket.readyRead.connect(lambda s=socket: self._read(s))
            socket.disconnected.connect(socket.deleteLater)

    def _read(self, socket: QLocalSocket) -> None:
        if not socket.canReadLine():
            return
        line = bytes(socket.readLine().data()).decode("utf-8", errors="replace")
        try:
            argv = [str(a) for a in json.loads(line).get("argv", [])]
        except (ValueError, AttributeError):
            argv = []
        socket.write(b"ok\n")
        socket.flush()
        self._on_request(argv)
