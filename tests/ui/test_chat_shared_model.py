"""The Chat page's model picker switches the backend botserver shares: it says so, and the
botserver files gbdesk wrote keep naming the model that is served."""

from __future__ import annotations

import shutil

from gbdesk.botserver import read_config_csv, read_env_file


def _settle(qtbot, backend) -> None:
    qtbot.waitUntil(
        lambda: not backend.is_busy() and backend.view.phase in {"ready", "failed", "stopped"},
        timeout=120_000,
    )


def _pick(qtbot, chat, name: str) -> None:
    qtbot.waitUntil(
        lambda: any(
            name in chat.model_picker.itemText(i) for i in range(chat.model_picker.count())
        ),
        timeout=30_000,
    )
    index = next(
        i for i in range(chat.model_picker.count()) if name in chat.model_picker.itemText(i)
    )
    chat.model_picker.setCurrentIndex(index)
    chat.model_picker.activated.emit(index)


def test_the_picker_says_it_switches_the_shared_backend_and_keeps_botserver_true(
    qtbot, configured_state, starter_model, tmp_path
) -> None:
    from gbdesk.backend.botserver_link import backend_values, write_botserver_config
    from gbdesk.download.library import ModelLibrary
    from gbdesk.ui.pages.chat import ChatPage
    from tests.free_ports import free_port

    state = configured_state
    state.update_settings(backend_port=free_port(), context_length=512, parallel=1)
    # botserver was pointed at the backend (as the wizard's backend step does).
    config, env = tmp_path / "bot.gbai" / "bot.gbot" / "config.csv", tmp_path / ".env"
    write_botserver_config(backend_values(model="starter"), config_csv=config, env_file=env)
    assert read_config_csv(config)["llm-model"] == starter_model.name
    other = ModelLibrary().import_file(shutil.copy(starter_model, tmp_path / "other.Q4_1.gguf"))
    # A setting saved by the app afterwards must not forget where botserver's files are.
    state.update_settings(context_length=512)

    state.backend.start()
    _settle(qtbot, state.backend)
    assert state.backend.is_ready(), state.backend.view
    chat = ChatPage(state)
    qtbot.addWidget(chat)
    chat.show()
    assert "botserver" in chat.model_picker.toolTip()

    _pick(qtbot, chat, "other.Q4_1.gguf")
    assert "Switching the shared bot backend to other.Q4_1.gguf" in chat.banner.text()
    assert "botserver" in chat.banner.text()
    _settle(qtbot, state.backend)
    assert state.backend.view.model == other.path
    qtbot.waitUntil(lambda: "now serves" in chat.banner.text(), timeout=30_000)
    assert chat.banner.level == "success", chat.banner.text()
    assert str(config) in chat.banner.text() and str(env) in chat.banner.text()
    assert read_config_csv(config)["llm-model"] == "other.Q4_1.gguf"
    assert read_env_file(env)["LLM_MODEL"] == "other.Q4_1.gguf"
    assert read_config_csv(config)["llm-server"] == "false"  # nothing else changed

    # Files gbdesk never wrote cannot be kept true: the banner says what to do instead.
    state.update_settings(botserver_config_csv="", botserver_env_file="")
    _pick(qtbot, chat, "bundled")
    _settle(qtbot, state.backend)
    qtbot.waitUntil(lambda: "now serves" in chat.banner.text(), timeout=30_000)
    assert chat.banner.level == "warning" and "still name the old model" in chat.banner.text()
    assert read_config_csv(config)["llm-model"] == "other.Q4_1.gguf"  # not gbdesk's any more
    state.shutdown()
