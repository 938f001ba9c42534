"""One model in use, everywhere, with the real backend child process: "Serve this model"
switches a running backend and reports its progress; the Installed list, the Chat header, the
Dashboard and Settings follow it; a saved change the running backend lacks says "Restart the
backend to apply"; the chat's own actions (regenerate, edit, copy, token limit, undo)."""

from __future__ import annotations

import shutil

import pytest
from PySide6.QtGui import QGuiApplication

pytestmark = [pytest.mark.slow, pytest.mark.model]


def _settle(qtbot, backend, timeout: int = 120_000) -> None:
    qtbot.waitUntil(
        lambda: not backend.is_busy() and backend.view.phase in {"ready", "failed", "stopped"},
        timeout=timeout,
    )


def _ask(qtbot, chat, text: str) -> None:
    chat.composer.setPlainText(text)
    chat.send()
    assert chat.is_streaming()
    qtbot.waitUntil(lambda: not chat.is_streaming(), timeout=120_000)


def test_serve_this_model_switches_the_running_backend(
    qtbot, configured_state, starter_model, tmp_path
) -> None:
    from gbdesk.ui.pages.chat import ChatPage
    from gbdesk.ui.pages.dashboard import DashboardPage
    from gbdesk.ui.pages.models import ModelsPage
    from gbdesk.ui.pages.settings import SettingsPage
    from tests.free_ports import free_port

    state = configured_state
    state.update_settings(backend_port=free_port(), context_length=1024, parallel=1)
    backend = state.backend
    models = ModelsPage(state)
    chat = ChatPage(state)
    dashboard = DashboardPage(state)
    settings = SettingsPage(state)
    for page in (models, chat, dashboard, settings):
        qtbot.addWidget(page)
    models.show()

    # The bundled starter is served first, and marked so.
    backend.start()
    _settle(qtbot, backend)
    assert backend.is_ready(), backend.view
    qtbot.waitUntil(lambda: models.serving_row() >= 0, timeout=30_000)
    row = models.serving_row()
    assert models.installed[row].source == "bundled"
    assert models.installed_table.item(row, 4).text() == "Serving"
    assert not models.use_button.isEnabled()  # already in use

    # A second model: the starter copied under another name, imported like any GGUF.
    second = tmp_path / "second-model.Q4_1.gguf"
    shutil.copyfile(starter_model, second)
    models.import_file(str(second))
    qtbot.waitUntil(
        lambda: models._task is None and any(m.source == "imported" for m in models.installed),
        timeout=60_000,
    )
    imported = next(i for i, m in enumerate(models.installed) if m.source == "imported")
    models.installed_table.selectRow(imported)
    assert models.use_button.isEnabled()
    first_pid = backend.view.pid
    phases: list[str] = []
    banners: list[str] = []
    backend.state_changed.connect(lambda view: phases.append(view.phase))
    backend.state_changed.connect(lambda _view: banners.append(models.banner.text()))
    models.use_selected()
    _settle(qtbot, backend)
    # It went stopping -> stopped -> starting -> ready (it used to end at "stopped").
    assert backend.is_ready(), (phases, backend.view)
    assert phases[0] == "stopping" and phases[-1] == "ready" and "starting" in phases
    assert backend.view.pid != first_pid
    new_path = models.installed[imported].path
    assert backend.view.model == new_path == state.settings.model
    assert any("Serving second-model" in text for text in banners)  # progress was shown
    assert "now serves second-model" in models.banner.text()
    assert models.installed_table.item(imported, 4).text() == "Serving"
    starter_row = next(i for i, m in enumerate(models.installed) if m.source == "bundled")
    assert models.installed_table.item(starter_row, 4).text() == ""

    # Chat's header names it, and the answer comes from it.
    chat.show()
    qtbot.waitUntil(lambda: "second-model" in chat.model_picker.currentText(), timeout=30_000)
    _ask(qtbot, chat, "Say hello.")
    reply = chat.current.messages[-1]
    assert reply.role == "assistant" and reply.content.strip()
    assert reply.model.startswith("second-model")
    assert "second-model" in chat.transcript.toPlainText()

    # The Dashboard follows the new backend and keeps reading its figures.
    dashboard.show()
    assert "second-model" in dashboard.backend_status.text()
    qtbot.waitUntil(
        lambda: dashboard.metrics is not None and dashboard.metrics.requests >= 1, timeout=30_000
    )

    # Settings shows the model in use; a saved change the backend lacks asks for a restart.
    settings.show()
    qtbot.waitUntil(lambda: "second-model" in settings.model.currentText(), timeout=30_000)
    assert not settings.restart_banner.isVisible()
    settings.context.setValue(2048)
    settings.threads.setValue(1)
    settings.save()
    assert settings.restart_banner.isVisible()
    assert "context length" in settings.restart_banner.text()
    assert "threads" in settings.restart_banner.text()
    assert settings.restart_banner.action_button.text() == "Restart the backend"
    settings.restart_banner.action_button.click()
    _settle(qtbot, backend)
    assert backend.is_ready(), backend.view
    assert backend._supervisor.options.ctx == 2048 and backend._supervisor.options.threads == 1
    assert backend.pending_changes() == ()
    assert not settings.restart_banner.isVisible()

    # The Chat header's picker switches back to the starter.
    chat.show()
    starter_index = next(
        i for i in range(chat.model_picker.count()) if "bundled" in chat.model_picker.itemText(i)
    )
    chat.model_picker.setCurrentIndex(starter_index)
    chat.model_picker.activated.emit(starter_index)
    _settle(qtbot, backend)
    assert backend.is_ready(), backend.view
    assert models.installed[models.serving_row()].source == "bundled"
    state.shutdown()


def test_chat_actions_with_the_real_backend(qtbot, configured_state, starter_model) -> None:
    from gbdesk.ui.pages.chat import TOKEN_LIMIT_NOTE, ChatPage, code_blocks
    from tests.free_ports import free_port

    state = configured_state
    state.update_settings(
        model=str(starter_model), backend_port=free_port(), context_length=1024, parallel=1
    )
    state.backend.start()
    _settle(qtbot, state.backend)
    assert state.backend.is_ready(), state.backend.view
    chat = ChatPage(state)
    qtbot.addWidget(chat)
    chat.show()
    assert not chat.backend_notice.isVisible()

    # A per-conversation system prompt, kept with the conversation.
    chat.system_prompt.setText("You answer in one short sentence.")
    chat.max_tokens.setValue(16)
    chat.temperature.setValue(0.0)
    _ask(qtbot, chat, "Write a long story about a dragon and a castle.")
    conversation = chat.current
    assert conversation.system_prompt == "You answer in one short sentence."
    first = conversation.messages[-1]
    # A reply cut by max_tokens says so.
    assert first.finish == "length", first
    assert TOKEN_LIMIT_NOTE in chat.transcript.toPlainText()

    # Regenerate replaces the last answer.
    chat.max_tokens.setValue(64)
    chat.regenerate()
    qtbot.waitUntil(lambda: not chat.is_streaming(), timeout=120_000)
    assert len(conversation.messages) == 2 and conversation.messages[-1] is not first
    assert conversation.messages[-1].content.strip()

    # Copy a message.
    chat._on_link(_url("gbdesk:copy/1"))
    assert QGuiApplication.clipboard().text() == conversation.messages[1].content

    # Edit and resend: the question returns to the composer, the answer is dropped.
    chat._on_link(_url("gbdesk:edit/0"))
    assert chat.composer.toPlainText().startswith("Write a long story")
    assert conversation.messages == []
    chat.composer.setPlainText("Say hi.")
    chat.send()
    qtbot.waitUntil(lambda: not chat.is_streaming(), timeout=120_000)
    assert [m.role for m in conversation.messages] == ["user", "assistant"]
    assert conversation.messages[0].content == "Say hi."

    # Code blocks have their own Copy.
    conversation.messages[-1].content = "Run:\n\n```python\nprint('hi')\n```\n\nDone."
    chat._render()
    assert "Copy code" in chat.transcript.toPlainText()
    chat._on_link(_url("gbdesk:code/1/0"))
    assert QGuiApplication.clipboard().text() == "print('hi')"
    assert code_blocks("a\n```\nx\ny\n```\n~~~\nz\n~~~") == ["x\ny", "z"]

    # Delete, then Undo: the conversation and its file come back.
    chat._save(conversation)
    title = conversation.title
    chat.delete_current()
    assert conversation not in chat.conversations
    assert not (chat.store.folder / f"{conversation.id}.json").exists()
    assert chat.banner.action_button.text() == "Undo"
    chat.banner.action_button.click()
    assert chat.current is conversation and chat.conversations[0].title == title
    assert (chat.store.folder / f"{conversation.id}.json").exists()
    assert not chat.banner.isVisible()
    state.shutdown()


def _url(text: str):
    from PySide6.QtCore import QUrl

    return QUrl(text)
