"""First launch to a chat answer, with the mouse, on real parts: this machine's probe, the starter
model downloaded from the local Hub, the real backend child process started by the supervisor,
botserver's config.csv written, registration in a real embedded PostgreSQL with its heartbeat,
then the main window's chat streaming an answer and the Dashboard reading /metrics."""

from __future__ import annotations

import os

import pytest
from PySide6.QtCore import Qt

from tests.free_ports import free_port
from tests.ui.stall import StallMonitor


def _next(qtbot, wizard) -> None:
    qtbot.waitUntil(wizard.next_button.isEnabled, timeout=60_000)
    qtbot.mouseClick(wizard.next_button, Qt.MouseButton.LeftButton)


def _click(qtbot, button) -> None:
    qtbot.waitUntil(button.isEnabled, timeout=30_000)
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting to be reaped counts as gone
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.model
@pytest.mark.postgres
@pytest.mark.usefixtures("starter_hub", "embedded_pg_cleanup")
def test_first_launch_to_a_chat_answer(qtbot, state, tmp_path, capsys) -> None:
    import psutil

    from gbdesk.botserver import read_config_csv
    from gbdesk.starter import STARTER_ID
    from gbdesk.ui import app as app_module
    from gbdesk.ui.pages.chat import ChatPage
    from gbdesk.ui.pages.dashboard import DashboardPage
    from gbdesk.ui.wizard import FirstRunWizard
    from gbdesk.ui.wizard.backend import BackendPage
    from gbdesk.ui.wizard.choose_model import ChooseModelPage
    from gbdesk.ui.wizard.done import DonePage
    from gbdesk.ui.wizard.download import DownloadPage
    from gbdesk.ui.wizard.hardware import HardwarePage
    from gbdesk.ui.wizard.shard import ShardPage

    port = free_port()
    state.update_settings(backend_port=port)
    wizard = FirstRunWizard(state)
    qtbot.addWidget(wizard)
    # What the app does when the wizard is accepted: the main window on the chat page.
    wizard.accepted.connect(lambda: app_module._open_main_window(state, None, "chat"))
    wizard.show()
    assert [p.step_title for p in wizard.pages][4] == "Start the bot backend"

    # 2: this machine.
    _next(qtbot, wizard)
    hardware = wizard.current_page()
    assert isinstance(hardware, HardwarePage)
    qtbot.waitUntil(lambda: state.profile is not None, timeout=30_000)
    cores = psutil.cpu_count(logical=False) or psutil.cpu_count()
    assert f"{cores} cores" in hardware.summary.cpu.text()

    # 3: the starter model.
    _next(qtbot, wizard)
    choose = wizard.current_page()
    assert isinstance(choose, ChooseModelPage)
    qtbot.waitUntil(lambda: bool(choose.recommendations), timeout=60_000)
    assert choose.select_model(STARTER_ID)

    # 4: download it from the local Hub, with progress.
    _next(qtbot, wizard)
    download = wizard.current_page()
    assert isinstance(download, DownloadPage)
    with StallMonitor() as download_stall:
        _click(qtbot, download.start_button)
        qtbot.waitUntil(download.is_complete, timeout=90_000)
    assert download.progress_updates > 2 and download.progress.value() == 1000

    # 5: start the real backend and wait for its health.
    _next(qtbot, wizard)
    backend_page = wizard.current_page()
    assert isinstance(backend_page, BackendPage)
    assert not wizard.next_button.isEnabled()
    assert backend_page.port.value() == port
    phases: list[str] = []
    state.backend.state_changed.connect(lambda view: phases.append(view.phase))
    _click(qtbot, backend_page.start_button)
    assert not backend_page.start_button.isEnabled()  # the start is visibly in progress
    qtbot.waitUntil(lambda: state.backend.is_ready() or "failed" in phases, timeout=120_000)
    assert state.backend.is_ready(), state.backend.view
    assert phases[0] == "starting" and phases[-1] == "ready"
    assert "Ready" in backend_page.status.text()
    qtbot.waitUntil(backend_page.botserver_card.isVisible, timeout=30_000)
    url = f"http://127.0.0.1:{port}"
    assert f"llm-url,{url}" in backend_page.value_lines()
    assert f"LLM_URL={url}" in backend_page.value_lines()
    # botserver's settings go into the bot's config.csv on request.
    bot = tmp_path / "default.gbai"
    (bot / "default.gbot").mkdir(parents=True)
    (bot / "default.gbot" / "config.csv").write_text("name,value\ntheme-color1,#0d2b55\n")
    backend_page.bot_dir.setText(str(bot))
    _click(qtbot, backend_page.write_button)
    qtbot.waitUntil(lambda: "Written" in backend_page.write_result.text(), timeout=30_000)
    written = read_config_csv(bot / "default.gbot" / "config.csv")
    assert written["llm-url"] == url and written["llm-server"] == "false"
    assert written["theme-color1"] == "#0d2b55"

    # 6: register in the embedded PostgreSQL; the heartbeat starts next to the backend.
    _next(qtbot, wizard)
    shard = wizard.current_page()
    assert isinstance(shard, ShardPage)
    _click(qtbot, shard.panel.register_button)
    qtbot.waitUntil(
        lambda: shard.panel.result is not None or shard.panel.banner.level == "error",
        timeout=120_000,
    )
    assert shard.is_complete(), shard.panel.banner.text()
    qtbot.waitUntil(lambda: state.heartbeat.last_beat is not None, timeout=60_000)
    assert state.heartbeat.running

    # 7: done, then the main window opens on the chat page.
    _next(qtbot, wizard)
    assert isinstance(wizard.current_page(), DonePage)
    assert "ready at" in wizard.current_page().summary.text()
    _next(qtbot, wizard)
    assert state.settings.first_run_done
    window = app_module._windows[-1]
    qtbot.addWidget(window)
    chat = window.page("chat")
    assert isinstance(chat, ChatPage) and window.current_page_key() == "chat"
    assert not chat.backend_notice.isVisible()

    # One message, a streamed answer from the starter model.
    with StallMonitor() as chat_stall:
        chat.composer.setPlainText("Say hello in one short sentence.")
        _click(qtbot, chat.send_button)
        assert chat.is_streaming()
        qtbot.waitUntil(lambda: not chat.is_streaming(), timeout=120_000)
    assert not chat.banner.isVisible(), chat.banner.text()
    reply = chat.current.messages[-1]
    assert reply.role == "assistant" and reply.content.strip()
    assert reply.content.strip()[:20] in chat.transcript.toPlainText()

    # The Dashboard reads the backend's figures.
    dashboard = window.show_page("dashboard")
    assert isinstance(dashboard, DashboardPage)
    qtbot.waitUntil(
        lambda: dashboard.metrics is not None and dashboard.metrics.requests >= 1, timeout=30_000
    )
    assert dashboard.metrics.completion_tokens > 0
    assert "tokens/s" in dashboard.tokens_tile.value_label.text()

    with capsys.disabled():
        print(
            f"\n[stall] largest event-loop gap: download {download_stall.largest_ms:.1f} ms, "
            f"streamed chat {chat_stall.largest_ms:.1f} ms"
        )
    assert download_stall.largest_ms < 2000 and chat_stall.largest_ms < 2000  # sanity only

    # Quit stops the backend child, the heartbeat and the embedded PostgreSQL this app started.
    from gbdesk.shard.embedded import EmbeddedPostgres

    pid = state.backend.view.pid
    assert pid is not None and _alive(pid)
    pg_pid = EmbeddedPostgres().pid()
    assert pg_pid is not None and state.embedded_started_here
    assert "gbdesk's database" in state.quit_summary()
    window._quitting = True
    window.close()
    state.shutdown()
    assert not _alive(pid)
    assert not state.heartbeat.running
    assert state.backend.view.phase == "stopped"
    assert not EmbeddedPostgres().is_running() and not _alive(pg_pid)
