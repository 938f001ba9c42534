"""Shard registration from the wizard and the Node page, against a real embedded PostgreSQL."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from tests.free_ports import free_port


@pytest.mark.postgres
@pytest.mark.slow
def test_wizard_registers_in_the_embedded_database(
    qtbot, state, embedded_pg_cleanup, tmp_path
) -> None:
    from gbdesk.botserver import read_env_file
    from gbdesk.ui.pages.node import NodePage
    from gbdesk.ui.wizard.shard import ShardPage

    page = ShardPage(state)
    qtbot.addWidget(page)
    page.show()
    assert page.can_skip() and not page.is_complete()
    env_file = tmp_path / "bot" / ".env"
    env_file.parent.mkdir()
    page.panel.env_file.setText(str(env_file))
    page.panel.shard_id.setValue(7)
    qtbot.mouseClick(page.panel.register_button, Qt.MouseButton.LeftButton)
    assert not page.panel.register_button.isEnabled()
    qtbot.waitUntil(
        lambda: page.panel.result is not None or page.panel.banner.level == "error", timeout=90_000
    )
    assert page.panel.banner.level == "success", page.panel.banner.text()
    assert page.is_complete()
    assert "7" in page.panel.view.values["shard"].text()
    assert "embedded PostgreSQL" in page.panel.view.values["database"].text()
    tenants = page.panel.view.values["tenants"].text()
    assert tenants.startswith("All tenants") and "9223372036854775807" not in tenants
    assert read_env_file(env_file)["SHARD_ID"] == "7"

    # The Node page reads the same registration back and beats.
    node = NodePage(state)
    qtbot.addWidget(node)
    node.show()
    qtbot.waitUntil(node.beat_button.isEnabled, timeout=30_000)
    qtbot.waitUntil(lambda: not node._busy, timeout=30_000)
    node.heartbeat_label.clear()
    node.beat()
    assert node._busy
    qtbot.waitUntil(lambda: not node._busy, timeout=30_000)
    assert "last seen" in node.heartbeat_label.text()
    assert not node.status_banner.isVisible()

    # The heartbeat records the model the backend serves now (after a switch, the new one).
    from gbdesk.app.shard_actions import registration_status
    from gbdesk.shard.capacity import NodeCapacity
    from gbdesk.shard.service import beat_once

    beat_once(capacity=NodeCapacity(llm_model="second-model.Q4_1.gguf"))
    assert registration_status(state.settings).registration.llm_model == "second-model.Q4_1.gguf"
    # The fleet table lists this computer.
    qtbot.waitUntil(lambda: node.fleet.result is not None, timeout=30_000)
    qtbot.waitUntil(lambda: not node.fleet.is_busy(), timeout=30_000)
    assert "(this computer)" in node.fleet.table.item(0, 1).text()


@pytest.mark.postgres
def test_an_unreachable_database_shows_a_message(qtbot, state) -> None:
    from gbdesk.ui.wizard.shard import ShardPage

    page = ShardPage(state)
    qtbot.addWidget(page)
    page.show()
    page.panel.url_choice.setChecked(True)
    page.panel.database_url.setText(f"postgresql://bot:secret@127.0.0.1:{free_port()}/bots")
    page.panel.register()
    qtbot.waitUntil(lambda: not page.panel.is_busy(), timeout=60_000)
    assert page.panel.banner.level == "error"
    assert page.panel.banner.isVisible()
    assert "secret" not in page.panel.banner.text()
    # The address stays readable; only the password moved to its own hidden field.
    assert page.panel.database_url.text().startswith("postgresql://bot@127.0.0.1:")
    assert page.panel.database_password.text() == "secret"
    assert page.panel.database_password.echoMode() == page.panel.database_password.EchoMode.Password
    text = page.panel.banner.text()
    assert "Nothing answers at 127.0.0.1:" in text and "`" not in text and "Errno" not in text
    assert page.panel.register_button.isEnabled()
    assert not page.is_complete() and page.can_skip()


@pytest.mark.postgres
def test_a_web_server_instead_of_postgres_is_named_in_plain_words(qtbot, state) -> None:
    import socket
    import threading

    from gbdesk.ui.wizard.shard import ShardPage

    # A raw socket that answers like a web server does to anything it does not understand.
    web = socket.socket()
    web.bind(("127.0.0.1", 0))
    web.listen()
    port = web.getsockname()[1]

    def answer() -> None:
        while True:
            try:
                conn, _ = web.accept()
            except OSError:
                return
            with conn:
                conn.recv(64)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    threading.Thread(target=answer, daemon=True).start()
    try:
        page = ShardPage(state)
        qtbot.addWidget(page)
        page.show()
        page.panel.url_choice.setChecked(True)
        page.panel.database_url.setText(f"postgresql://bot@127.0.0.1:{port}/bots")
        page.panel.database_password.setText("p@ss word")
        assert "p%40ss%20word@" in page.panel.full_database_url()
        page.panel.register()
        qtbot.waitUntil(lambda: not page.panel.is_busy(), timeout=60_000)
    finally:
        web.close()
    text = page.panel.banner.text()
    assert f"The program at 127.0.0.1:{port} is not a PostgreSQL server." in text
    assert "SSL negotiation" not in text and "p@ss" not in text
