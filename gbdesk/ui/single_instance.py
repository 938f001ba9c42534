"""One gbdesk per user: a second launch hands its request to the running app and exits.

The first app listens on a :class:`QLocalServer` named after the user and gbdesk's config
folder (so test runs with their own ``GBDESK_HOME`` do not meet); a later launch connects, sends
its arguments as one line of JSON, waits for the running app's ``ok`` and exits; the running app
raises its window (or opens the wizard when asked).

Start-up stays lean: on Linux and macOS the later launch connects with Python's own Unix socket
(QtNetwork is not loaded before the first window), and the first app starts listening right after
its first paint. A server left behind by a crashed app (nothing answers it) is replaced.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject

CONNECT_TIMEOUT_S = 0.5
ANSWER_TIMEOUT_S = 2.5


def server_name() -> str:
    """The local server's name (a socket path on Unix) for this user and this gbdesk home."""
    from gbdesk.paths import app_paths

    user = str(os.getuid()) if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    digest = zlib.adler32(f"{user}\0{app_paths().config_dir}".encode())
    name = f"gbdesk-{user}-{digest:08x}"
    if os.name == "nt":
        return name  # a named pipe
    folder = os.environ.get("XDG_RUNTIME_DIR")
    if not folder:
        import tempfile

        folder = tempfile.gettempdir()
    return str(Path(folder) / f"{name}.sock")


def _message(argv: Sequence[str]) -> bytes:
    return (json.dumps({"argv": list(argv)}) + "\n").encode("utf-8")


def hand_over(argv: Sequence[str], *, name: str | None = None) -> bool:
    """Give ``argv`` to a gbdesk already running; True when one took it (then exit)."""
    name = name or server_name()
    if os.name == "nt":
        return _hand_over_qt(argv, name)
    if not os.path.exists(name):  # no app listens (the common first launch): no socket needed
        return False
    import socket

    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(CONNECT_TIMEOUT_S)
            client.connect(name)
            client.sendall(_message(argv))
            client.settimeout(ANSWER_TIMEOUT_S)
            return client.recv(16).startswith(b"ok")
    except OSError:  # nothing listens (or a stale socket file): this launch is the first
        return False


def _hand_over_qt(argv: Sequence[str], name: str) -> bool:
    from PySide6.QtNetwork import QLocalSocket

    client = QLocalSocket()
    client.connectToServer(name)
    if not client.waitForConnected(int(CONNECT_TIMEOUT_S * 1000)):
        return False
    client.write(_message(argv))
    while client.bytesToWrite() and client.waitForBytesWritten(int(CONNECT_TIMEOUT_S * 1000)):
        pass
    answered = client.waitForReadyRead(int(ANSWER_TIMEOUT_S * 1000)) and client.readAll().size() > 0
    client.disconnectFromServer()
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
        from PySide6.QtNetwork import QLocalServer

        super().__init__(parent)
        self._on_request = on_request
        self.server = QLocalServer(self)
        self.server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self.name = name or server_name()
        if not self.server.listen(self.name) and not hand_over(["--ping"], name=self.name):
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
            client = self.server.nextPendingConnection()
            client.readyRead.connect(lambda c=client: self._read(c))
            client.disconnected.connect(client.deleteLater)

    def _read(self, client: Any) -> None:
        if not client.canReadLine():
            return
        line = bytes(client.readLine().data()).decode("utf-8", errors="replace")
        try:
            argv = [str(a) for a in json.loads(line).get("argv", [])]
        except (ValueError, AttributeError):
            argv = []
        client.write(b"ok\n")
        client.flush()
        if "--ping" not in argv:  # another instance checking that this one is alive
            self._on_request(argv)
