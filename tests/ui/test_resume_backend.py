"""After Quit and a relaunch, a node set up for botserver serves again what it served (the
resume_backend setting, on once the wizard is done), and the Dashboard says so."""

from __future__ import annotations

from gbdesk.settings import Settings, save_settings


def _settle(qtbot, backend) -> None:
    qtbot.waitUntil(
        lambda: backend.is_ready() or backend.view.phase in {"failed", "crashed"},
        timeout=120_000,
    )


def test_a_relaunch_serves_the_model_again_and_says_so(qtbot, qapp, starter_model) -> None:
    from gbdesk.ui.pages.chat import ChatPage
    from gbdesk.ui.pages.dashboard import DashboardPage
    from gbdesk.ui.state import AppState
    from tests.free_ports import free_port

    save_settings(
        Settings(
            first_run_done=True,
            model=str(starter_model),
            backend_port=free_port(),
            context_length=512,
            parallel=1,
        )
    )
    assert Settings().resume_backend  # on by default: the wizard's node keeps serving
    for launch in range(2):  # the first launch, then Quit and a relaunch
        state = AppState()
        try:
            dashboard = DashboardPage(state)
            qtbot.addWidget(dashboard)
            dashboard.show()
            assert state.resume_serving()
            _settle(qtbot, state.backend)
            assert state.backend.is_ready(), (launch, state.backend.view)
            assert state.backend.view.model == str(starter_model)
            assert dashboard.backend_status.text() != "Stopped"
            assert dashboard.resume_note.isVisible()
            assert "serves SmolLM2-135M-Instruct.Q4_1.gguf again" in dashboard.resume_note.text()
            chat = ChatPage(state)
            qtbot.addWidget(chat)
            chat.show()
            assert not chat.backend_notice.isVisible()  # not "the backend is not running"
            assert not state.resume_serving()  # already serving: nothing twice
        finally:
            state.shutdown()  # Quit stops the backend
        assert not state.backend.is_running()


def test_no_resume_before_the_wizard_or_when_turned_off(qtbot, qapp) -> None:
    from gbdesk.ui.state import AppState

    for settings in (
        Settings(first_run_done=False),
        Settings(first_run_done=True).replace(resume_backend=False),
    ):
        save_settings(settings)
        state = AppState()
        try:
            assert not state.resume_serving()
            assert not state.backend.is_running() and state.resumed_model == ""
        finally:
            state.shutdown()
