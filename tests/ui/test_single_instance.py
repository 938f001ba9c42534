"""One gbdesk per user: a second launch (a real second process) hands over to the running app,
which raises its window, and exits without opening another app or tray icon."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest


def test_a_second_launch_raises_the_running_window(qtbot, configured_state) -> None:
    from gbdesk.ui.single_instance import InstanceServer, hand_over, server_name

    requests: list[list[str]] = []
    server = InstanceServer(requests.append)
    try:
        assert server.listening and server.name == server_name()
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
        started = time.monotonic()
        second = subprocess.Popen(
            [sys.executable, "-m", "gbdesk.ui", "--wizard"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        qtbot.waitUntil(lambda: bool(requests), timeout=60_000)
        qtbot.waitUntil(lambda: second.poll() is not None, timeout=30_000)
        output, _ = second.communicate()
        assert second.returncode == 0, output.decode()
        assert requests == [["--wizard"]]
        assert time.monotonic() - started < 60
    finally:
        server.close()
        if "second" in locals() and second.poll() is None:  # it did not hand over: no orphan
            second.kill()
            second.wait(10)
    # Nothing listening (the first app quit): a launch starts normally.
    assert not hand_over([], name=server_name())


@pytest.mark.qt_log_ignore("does not support raise")  # offscreen; the Xvfb test raises for real
def test_the_main_window_comes_to_the_front(qtbot, configured_state) -> None:
    from gbdesk.ui import app as app_module
    from gbdesk.ui.main_window import MainWindow

    window = MainWindow(configured_state)
    qtbot.addWidget(window)
    window.hide()  # closed to the tray
    app_module._windows.append(window)
    try:
        app_module._on_second_launch(configured_state, None, [])
        assert window.isVisible()
    finally:
        app_module._windows.remove(window)


def test_a_server_left_by_a_crashed_app_is_replaced(qtbot, tmp_path) -> None:
    from PySide6.QtNetwork import QLocalServer

    from gbdesk.ui.single_instance import InstanceServer

    name = str(tmp_path / "stale.sock") if os.name != "nt" else f"gbdesk-test-{os.getpid()}"
    stale = QLocalServer()
    assert stale.listen(name)
    stale.close()  # what a crash can leave (on Unix, the socket file)
    server = InstanceServer(lambda _argv: None, name=name)
    assert server.listening
    server.close()
