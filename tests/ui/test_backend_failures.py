"""The bot backend's failures in the GUI, with the real child process: a taken port, a damaged
model, a crash. Each shows the reason and its fix, and nothing freezes."""

from __future__ import annotations

import os
import signal
import socket

import pytest

from tests.ui.stall import StallMonitor

pytestmark = [pytest.mark.slow, pytest.mark.model]


def _wait_settled(qtbot, backend) -> None:
    qtbot.waitUntil(
        lambda: not backend.is_busy() and backend.view.phase in {"ready", "failed", "stopped"},
        timeout=120_000,
    )


def test_a_taken_port_shows_the_message_and_fix(qtbot, state, starter_model) -> None:
    from gbdesk.ui.wizard.backend import BackendPage

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        state.update_settings(model=str(starter_model))
        page = BackendPage(state)
        qtbot.addWidget(page)
        page.show()
        page.port.setValue(port)
        with StallMonitor() as monitor:
            page.start()
            assert not page.start_button.isEnabled()
            _wait_settled(qtbot, state.backend)
        view = state.backend.view
        assert view.phase == "failed"
        # Plain words and an action: no errno, no command-line flag.
        assert view.message == f"Port {port} is used by another program."
        assert "--" not in view.fix and "Errno" not in view.message
        assert page.banner.isVisible() and page.banner.level == "error"
        assert "used by another program" in page.banner.text() and "Fix:" in page.banner.text()
        assert page.banner.action_button.isVisible()
        assert page.banner.action_button.text() == "Use another port"
        assert page.start_button.isEnabled()  # or try again
        assert not page.is_complete() and page.can_skip()
        assert not page.botserver_card.isVisible()
        # "Use another port" picks a free one, saves it and starts the backend there.
        page.banner.action_button.click()
        qtbot.waitUntil(state.backend.is_ready, timeout=120_000)
        assert page.port.value() == state.settings.backend_port != port
        assert not page.banner.isVisible()
    assert monitor.largest_ms < 2000  # the GUI kept running (a sanity bound, not a timing)


def test_a_damaged_model_shows_the_message_on_the_dashboard_and_chat(
    qtbot, configured_state, tmp_path
) -> None:
    from gbdesk.ui.pages.chat import ChatPage
    from gbdesk.ui.pages.dashboard import DashboardPage
    from tests.free_ports import free_port

    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + os.urandom(4096))
    configured_state.update_settings(model=str(broken), backend_port=free_port())
    dashboard = DashboardPage(configured_state)
    chat = ChatPage(configured_state)
    for page in (dashboard, chat):
        qtbot.addWidget(page)
        page.show()
    assert chat.backend_notice.isVisible() and chat.backend_notice.start_button.isEnabled()
    dashboard.start_button.click()
    assert not dashboard.start_button.isEnabled()
    _wait_settled(qtbot, configured_state.backend)
    view = configured_state.backend.view
    assert view.phase == "failed"
    assert "cannot load the model" in view.message and "broken.gguf" in view.message
    assert dashboard.backend_banner.isVisible()
    assert "broken.gguf" in dashboard.backend_banner.text()
    assert dashboard.start_button.isEnabled()
    assert dashboard.tokens_tile.value_label.text() == "-"
    assert "broken.gguf" in chat.backend_notice.banner.text()
    assert chat.backend_notice.start_button.isEnabled()


def test_a_crashed_backend_is_restarted_and_quit_stops_it(
    qtbot, configured_state, starter_model
) -> None:
    from tests.free_ports import free_port

    configured_state.update_settings(
        model=str(starter_model), backend_port=free_port(), context_length=1024, parallel=1
    )
    backend = configured_state.backend
    phases: list[str] = []
    backend.state_changed.connect(lambda view: phases.append(view.phase))
    backend.start()
    _wait_settled(qtbot, backend)
    assert backend.is_ready(), backend.view
    assert "loading" in phases or phases[:2] == ["starting", "ready"]
    first_pid = backend.view.pid
    os.kill(first_pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: "restarting" in phases, timeout=30_000)
    qtbot.waitUntil(backend.is_ready, timeout=120_000)
    assert phases[phases.index("restarting") - 1] == "crashed"
    assert backend.view.pid not in {None, first_pid} and backend.view.restarts == 1
    second_pid = backend.view.pid
    configured_state.shutdown()
    assert backend.view.phase == "stopped"
    with pytest.raises(ProcessLookupError):
        os.kill(second_pid, 0)
