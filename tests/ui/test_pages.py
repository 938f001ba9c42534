"""Main-window pages on the real core: models library, settings, logs, chat store."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox


def test_models_page_imports_lists_and_deletes(qtbot, state, starter_model, monkeypatch) -> None:
    from gbdesk.ui.pages.models import ModelsPage

    page = ModelsPage(state)
    qtbot.addWidget(page)
    page.show()
    qtbot.waitUntil(lambda: bool(page.recommendations), timeout=60_000)
    assert page.catalogue_table.rowCount() == len(page.recommendations)
    # The bundled starter is listed (it can be served, not deleted).
    qtbot.waitUntil(lambda: [m.source for m in page.installed] == ["bundled"], timeout=60_000)
    assert "bundled" in page.installed_table.item(0, 3).text()
    assert not page.delete_button.isEnabled()
    page.import_file(str(starter_model))
    qtbot.waitUntil(
        lambda: [m.source for m in page.installed] == ["imported", "bundled"], timeout=60_000
    )
    assert page.banner.level == "success"
    assert page.installed_table.item(0, 1).text() == "Q4_1"
    # "Serve this model" starts the real backend with it.
    from tests.free_ports import free_port

    state.update_settings(backend_port=free_port(), context_length=1024, parallel=1)
    page.use_selected()
    assert state.settings.model == page.installed[0].path
    qtbot.waitUntil(
        lambda: state.backend.is_ready() or state.backend.view.phase == "failed", timeout=120_000
    )
    assert state.backend.is_ready(), state.backend.view
    assert state.backend.view.model == page.installed[0].path
    qtbot.waitUntil(lambda: page.installed_table.item(0, 4).text() == "Serving")
    assert "now serves" in page.banner.text() and page.banner.level == "success"
    assert not page.delete_button.isEnabled()  # not while it serves
    state.backend.stop()
    # the supervisor gives the child 10 s to exit on SIGTERM before it kills it
    qtbot.waitUntil(
        lambda: state.backend.view.phase == "stopped" and page._task is None, timeout=30_000
    )

    # Importing the same file again is refused with a message.
    page.import_file(str(starter_model))
    qtbot.waitUntil(lambda: page._task is None and page.banner.level == "error", timeout=60_000)

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    page.delete_selected()
    qtbot.waitUntil(
        lambda: [m.source for m in page.installed] == ["bundled"] and page._task is None,
        timeout=60_000,
    )


def test_settings_page_saves_and_masks_the_token(qtbot, state) -> None:
    from PySide6.QtWidgets import QLineEdit

    from gbdesk.download.hub import HUB_TOKEN_SECRET
    from gbdesk.paths import app_paths
    from gbdesk.secrets import get_secret
    from gbdesk.settings import load_settings
    from gbdesk.ui.pages.settings import SettingsPage

    page = SettingsPage(state)
    qtbot.addWidget(page)
    assert page.hub_token.echoMode() == QLineEdit.EchoMode.Password
    page.hub_endpoint.setText("ftp://mirror")
    page.save()
    assert page.banner.level == "error"
    page.hub_endpoint.setText("https://hf-mirror.com/")
    page.hub_token.setText("hf_abcdefghijklmnop")
    page.port.setValue(9090)
    page.start_at_login.setChecked(True)
    page.save()
    assert page.banner.level == "success", page.banner.text()
    saved = load_settings()
    assert saved.hub_endpoint == "https://hf-mirror.com"
    assert saved.backend_port == 9090 and saved.start_backend_at_login
    assert get_secret(HUB_TOKEN_SECRET) == "hf_abcdefghijklmnop"
    assert "hf_abcdefghijklmnop" not in app_paths().settings_file.read_text()
    from gbdesk.ui.autostart import autostart_file

    assert "--background" in autostart_file().read_text()


def test_settings_page_reaches_every_backend_option_with_the_schema_ranges(
    qtbot, qapp, monkeypatch
) -> None:
    from gbdesk.options import option
    from gbdesk.settings import load_settings
    from gbdesk.ui.pages.settings import SettingsPage
    from gbdesk.ui.state import AppState

    monkeypatch.setenv("GBDESK_BACKEND_PORT", "9999")  # an override the page must not save
    state = AppState()  # reads the settings with the environment, as the app does
    assert state.settings.backend_port == 9999
    page = SettingsPage(state)
    qtbot.addWidget(page)
    assert page.parallel.maximum() == option("parallel").maximum
    assert page.parallel.specialValueText() == "Automatic"
    assert page.queue_limit.toolTip() == option("queue_limit").help
    page.queue_limit.setValue(48)
    page.alias.setText("my-bot")
    page.repack.setCurrentIndex(page.repack.findData(False))
    page.save()
    assert page.banner.level == "success", page.banner.text()
    monkeypatch.delenv("GBDESK_BACKEND_PORT")
    saved = load_settings()
    assert (saved.queue_limit, saved.alias, saved.repack) == (48, "my-bot", False)
    assert saved.backend_port != 9999
    state.shutdown()


def test_logs_page_tails_the_log(qtbot, state) -> None:
    import logging

    from gbdesk.logs import setup_logging
    from gbdesk.ui.pages.logs import LogsPage

    setup_logging(to_stderr=False)
    logging.getLogger("gbdesk.test").warning("a line the Logs page must show")
    for handler in logging.getLogger("gbdesk").handlers:
        handler.flush()
    page = LogsPage(state)
    qtbot.addWidget(page)
    page.show()
    qtbot.waitUntil(
        lambda: "a line the Logs page must show" in page.app_log.toPlainText(), timeout=10_000
    )
    # Filters: by level and by text.
    logging.getLogger("gbdesk.llama_cpp").debug("a llama.cpp tensor line")
    logging.getLogger("gbdesk.test").info("an info line")
    for handler in logging.getLogger("gbdesk").handlers:
        handler.flush()
    page.refresh()
    qtbot.waitUntil(lambda: "an info line" in page.app_log.toPlainText(), timeout=10_000)
    assert "llama.cpp tensor" not in page.app_log.toPlainText()  # INFO unless asked
    page.level.setCurrentIndex(page.level.findData("WARNING"))
    assert "an info line" not in page.app_log.toPlainText()
    assert "must show" in page.app_log.toPlainText()
    page.search.setText("nothing like this")
    assert page.app_log.toPlainText() == "No line matches the filter."
    page.hide()
    for handler in list(logging.getLogger("gbdesk").handlers):
        logging.getLogger("gbdesk").removeHandler(handler)
        handler.close()


def test_log_filter_keeps_continuation_lines_with_their_record() -> None:
    from gbdesk.ui.pages.logs import filter_log, line_level

    text = (
        "2026-01-01 10:00:00,000 DEBUG gbdesk.llama_cpp: load tensor 1\n"
        "2026-01-01 10:00:01,000 ERROR gbdesk.ui: boom\n"
        "Traceback (most recent call last):\n"
        "  File x\n"
        "2026-01-01 10:00:02,000 INFO gbdesk.backend: Ready\n"
        "error: port 8081 is already in use\n"
        "fix: pick another port\n"
    )
    assert line_level("warning: low memory") == "WARNING"
    assert filter_log(text, "ERROR").splitlines() == [
        "2026-01-01 10:00:01,000 ERROR gbdesk.ui: boom",
        "Traceback (most recent call last):",
        "  File x",
        "error: port 8081 is already in use",
        "fix: pick another port",
    ]
    assert "load tensor" not in filter_log(text, "INFO")
    assert filter_log(text, "DEBUG", "TENSOR") == (
        "2026-01-01 10:00:00,000 DEBUG gbdesk.llama_cpp: load tensor 1"
    )


def test_conversations_survive_a_restart(tmp_path) -> None:
    from gbdesk.app.chat_store import ChatMessage, Conversation, ConversationStore

    store = ConversationStore(tmp_path)
    conversation = Conversation.new("hello")
    conversation.messages.append(ChatMessage("user", "hi"))
    store.save(conversation)
    (tmp_path / "broken.json").write_text("{not json")
    loaded = ConversationStore(tmp_path).load_all()
    assert [c.messages[0].content for c in loaded] == ["hi"]
    store.delete(conversation.id)
    assert ConversationStore(tmp_path).load_all() == []


def test_chat_against_a_closed_port_shows_a_message(qtbot, configured_state) -> None:
    from gbdesk.ui.pages.chat import ChatPage
    from tests.free_ports import free_port

    port = free_port()  # nothing listens there
    configured_state.update_settings(backend_port=port)
    page = ChatPage(configured_state)
    qtbot.addWidget(page)
    page.show()
    # Not started by gbdesk: the page says so and offers to start it.
    assert page.backend_notice.isVisible()
    assert "not running" in page.backend_notice.banner.text()
    assert page.backend_notice.start_button.isEnabled()
    page.composer.setPlainText("Hello?")
    page.send()
    assert page.is_streaming() and not page.send_button.isEnabled()
    qtbot.waitUntil(lambda: not page.is_streaming(), timeout=30_000)
    # One banner in plain words (no errno), the message kept for when the backend is ready.
    assert not page.banner.isVisible()
    notice = page.backend_notice.banner.text()
    assert "not running" in notice and "kept" in notice and "Errno" not in notice
    assert page.backend_notice.start_button.text() == "Start the backend"
    assert page.composer.toPlainText() == "Hello?"
    assert page.current.messages == []
    assert page.send_button.isEnabled()


def test_the_handbook_tab_downloads_through_the_app_queue(
    qtbot, state, starter_hub, starter_model, monkeypatch
) -> None:
    """The handbook tab has a Download per row: queued in the app's download queue (as the
    Hub tab's), then on the Installed tab; a model already here says so instead."""
    from gbdesk.starter import STARTER_ID
    from gbdesk.ui.pages.models import ModelsPage

    # Without the bundled copy the starter is just a handbook model to download.
    monkeypatch.setenv("GBDESK_STARTER_MODEL", str(starter_model.parent / "missing.gguf"))
    page = ModelsPage(state)
    qtbot.addWidget(page)
    page.show()
    qtbot.waitUntil(lambda: bool(page.recommendations), timeout=60_000)
    row = next(i for i, r in enumerate(page.recommendations) if r.model_id == STARTER_ID)
    button = page.catalogue_table.cellWidget(row, 4)
    assert button.text().startswith("Download ") and button.isEnabled()
    button.click()
    qtbot.waitUntil(lambda: button.text() == "Downloaded", timeout=120_000)
    assert state.downloads.jobs[-1].state.value == "done"
    qtbot.waitUntil(lambda: [m.source for m in page.installed] == ["hub"], timeout=60_000)
    assert "on the Installed tab" in page.banner.text() and page.banner.level == "success"

    page.refresh_catalogue()  # now on disk: no second download offered
    qtbot.waitUntil(
        lambda: (
            page.catalogue_table.cellWidget(row, 4) is not button
            and any(r.on_disk for r in page.recommendations if r.model_id == STARTER_ID)
        ),
        timeout=60_000,
    )
    again = next(i for i, r in enumerate(page.recommendations) if r.model_id == STARTER_ID)
    assert page.catalogue_table.cellWidget(again, 4).text() == "On this computer"
    assert not page.catalogue_table.cellWidget(again, 4).isEnabled()


def test_a_model_without_a_chat_template_is_warned_at_import_and_serve(
    qtbot, state, starter_model, tmp_path
) -> None:
    """A base model (no template in its header) is never served silently: the Models page
    says so when it is imported and when it serves, and names the template used instead."""
    from gbdesk.ui.pages.models import ModelsPage
    from tests.free_ports import free_port
    from tests.support.gguf_edit import copy_without_keys

    base = copy_without_keys(
        starter_model, tmp_path / "base-model.Q4_1.gguf", drop={"tokenizer.chat_template"}
    )
    page = ModelsPage(state)
    qtbot.addWidget(page)
    page.show()
    page.import_file(str(base))
    qtbot.waitUntil(lambda: page._task is None and page.banner.isVisible(), timeout=60_000)
    assert page.banner.level == "warning", page.banner.text()
    assert "Imported base-model.Q4_1.gguf" in page.banner.text()
    assert "no chat template" in page.banner.text() and "chatml template" in page.banner.text()

    qtbot.waitUntil(lambda: any(m.source == "imported" for m in page.installed), timeout=60_000)
    row = next(i for i, m in enumerate(page.installed) if m.source == "imported")
    page.installed_table.selectRow(row)
    state.update_settings(backend_port=free_port(), context_length=512, parallel=1)
    page.use_selected()
    qtbot.waitUntil(
        lambda: state.backend.is_ready() or state.backend.view.phase == "failed", timeout=120_000
    )
    assert state.backend.is_ready(), state.backend.view
    qtbot.waitUntil(lambda: "now serves" in page.banner.text(), timeout=30_000)
    assert page.banner.level == "warning" and "no chat template" in page.banner.text()
    state.backend.stop()
    qtbot.waitUntil(lambda: state.backend.view.phase == "stopped", timeout=30_000)
