"""Widgets that show the bot backend: a status line that follows the controller, and the
"not running" notice with its Start button (the Chat page and the Dashboard use them)."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from gbdesk.backend.supervisor import BackendState
from gbdesk.ui.backend_control import BackendView
from gbdesk.ui.theme import current_palette
from gbdesk.ui.widgets import Banner, primary_button

# Palette colour of the status dot per phase (anything else: muted).
_PHASE_COLOURS = {
    BackendState.READY: "success",
    BackendState.FAILED: "error",
    BackendState.CRASHED: "error",
}


def phase_colour(phase: BackendState) -> str:
    palette = current_palette()
    if phase in _PHASE_COLOURS:
        return getattr(palette, _PHASE_COLOURS[phase])
    return palette.warning if phase.busy else palette.muted


class BackendStatusLabel(QLabel):
    """ "● Ready · http://127.0.0.1:8081 · model.gguf", coloured by phase."""

    def __init__(self, backend, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        backend.state_changed.connect(self.show_view)
        self.show_view(backend.view)

    def show_view(self, view: BackendView) -> None:
        parts = [view.text]
        if view.phase is BackendState.READY:
            parts.append(view.url)
        if view.model:
            parts.append(view.model.replace("\\", "/").rsplit("/", 1)[-1])
        colour = phase_colour(view.phase)
        self.setText(f"<span style='color:{colour}'>●</span>&nbsp; " + "  ·  ".join(parts))


class BackendNotice(QWidget):
    """Shown while the backend is not ready: why, and a button that starts it."""

    def __init__(self, backend, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._backend = backend
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.banner = Banner()
        layout.addWidget(self.banner, 1)
        self.start_button: QPushButton = primary_button("Start the backend")
        self.start_button.clicked.connect(self._start)
        layout.addWidget(self.start_button)
        backend.state_changed.connect(self.show_view)
        self.show_view(backend.view)

    def _start(self) -> None:
        self._backend.start()

    def show_view(self, view: BackendView) -> None:
        if view.phase is BackendState.READY:
            self.hide()
            return
        if view.phase in {BackendState.FAILED, BackendState.CRASHED}:
            self.banner.show_message(f"The bot backend stopped: {view.message}", view.fix)
        elif view.running or view.phase == "stopping":
            self.banner.show_message(f"The bot backend: {view.text}", level="info")
        else:
            self.banner.show_message(
                "The bot backend is not running, so the model cannot answer.",
                "press Start the backend (it serves the model chosen in Settings or on the "
                "Models page)",
                level="warning",
            )
        self.start_button.setEnabled(not view.running and view.phase is not BackendState.STOPPING)
        if self.parentWidget() is not None:  # never a window of its own
            self.show()
