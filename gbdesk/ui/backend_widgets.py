"""Widgets that show the bot backend: a status line that follows the controller, and the
"not running" notice with its Start button (the Chat page and the Dashboard use them)."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from gbdesk.backend.supervisor import BackendState
from gbdesk.ui.backend_control import PORT_TAKEN, BackendView
from gbdesk.ui.theme import current_palette
from gbdesk.ui.widgets import Banner

# Palette colour of the status dot per phase (anything else: muted).
_PHASE_COLOURS = {
    BackendState.READY: "success",
    BackendState.FAILED: "error",
    BackendState.CRASHED: "error",
}


def model_label(model: str) -> str:
    """A model path or id as a person reads it: its file name."""
    return model.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


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
            parts.append(model_label(view.model))
        colour = phase_colour(view.phase)
        self.setText(f"<span style='color:{colour}'>●</span>&nbsp; " + "  ·  ".join(parts))


class BackendNotice(QWidget):
    """Shown while the backend is not ready: why, in plain words, and one action button
    (Start the backend, Start again, or Use another port when the port is taken)."""

    def __init__(self, backend, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._backend = backend
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.banner = Banner()
        layout.addWidget(self.banner, 1)
        self.retry_text = ""  # set by the Chat page when a message waits for the backend
        backend.state_changed.connect(self.show_view)
        self.show_view(backend.view)

    @property
    def start_button(self) -> QPushButton:
        """The banner's action button (its text says what it does)."""
        return self.banner.action_button

    def _start(self) -> None:
        self._backend.start()

    def show_view(self, view: BackendView) -> None:
        if view.phase is BackendState.READY:
            self.hide()
            return
        waiting = " Your message is kept and sent once it is ready." if self.retry_text else ""
        if view.phase in {BackendState.FAILED, BackendState.CRASHED}:
            action = (
                ("Use another port", self._backend.use_another_port)
                if view.action == PORT_TAKEN
                else ("Start again", self._start)
            )
            self.banner.show_message(
                f"The bot backend stopped: {view.message}", view.fix, action=action
            )
        elif view.running or view.phase is BackendState.STOPPING:
            model = model_label(view.model)
            self.banner.show_message(
                f"The bot backend: {view.text}" + (f" ({model})" if model else "") + waiting,
                level="info",
            )
        else:
            self.banner.show_message(
                "The bot backend is not running, so the model cannot answer." + waiting,
                "press Start the backend; it serves the model chosen in Settings "
                "or on the Models page",
                level="warning",
                action=("Start the backend", self._start),
            )
        self.start_button.setEnabled(not view.running and view.phase is not BackendState.STOPPING)
        if self.parentWidget() is not None:  # never a window of its own
            self.show()
