"""The Node page's worker card: a real `gbdesk worker` child started and stopped from the GUI."""

from __future__ import annotations

import socket

import pytest
from PySide6.QtCore import Qt

from gbdesk.hardware.rpc import PROTOCOL_VERSION, WorkerAddress, probe_worker
from tests.free_ports import free_port


@pytest.mark.slow
def test_the_node_page_starts_and_stops_a_worker(qtbot, state) -> None:
    from gbdesk.ui.pages.node import NodePage

    page = NodePage(state)
    qtbot.addWidget(page)
    page.show()
    panel = page.worker_panel
    assert not panel.exposure.isVisible()  # this computer only, by default
    port = free_port()
    panel.port_spin.setValue(port)
    panel.memory_spin.setValue(256)
    qtbot.mouseClick(panel.button, Qt.MouseButton.LeftButton)
    assert not panel.button.isEnabled()  # the start runs in a worker thread
    qtbot.waitUntil(panel.button.isEnabled, timeout=60_000)
    assert panel.running, panel.banner.text()
    assert f"port {port}" in panel.status.text()
    assert "only this computer can use it" in panel.status.text()
    assert panel.button.text() == "Stop the worker"
    status = probe_worker(WorkerAddress("127.0.0.1", port))
    assert status.version == PROTOCOL_VERSION
    assert status.total_bytes == 256 << 20
    assert state.settings.worker_port == port and state.settings.worker_memory_mib == 256
    qtbot.mouseClick(panel.button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.button.isEnabled() and not panel.running, timeout=30_000)
    assert panel.status.text() == "The worker is not running."
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


@pytest.mark.slow
def test_a_taken_port_is_said_in_plain_words(qtbot, state) -> None:
    from gbdesk.ui.worker_panel import WorkerPanel

    panel = WorkerPanel(state)
    qtbot.addWidget(panel)
    panel.show()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        panel.port_spin.setValue(taken.getsockname()[1])
        qtbot.mouseClick(panel.button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(panel.button.isEnabled, timeout=60_000)
    assert not panel.running
    assert panel.banner.level == "error"
    text = panel.banner.text()
    assert "already in use" in text
    assert "Errno" not in text and "--" not in text.replace("—", "")
    assert panel.button.text() == "Start the worker"


def test_lending_to_other_computers_warns_first(qtbot, state) -> None:
    from gbdesk.ui.worker_panel import EVERYWHERE, WorkerPanel

    panel = WorkerPanel(state)
    qtbot.addWidget(panel)
    panel.show()
    panel.network_box.setChecked(True)
    assert panel.exposure.isVisible()
    assert "no password" in panel.exposure.text()
    assert panel._options().host == EVERYWHERE
