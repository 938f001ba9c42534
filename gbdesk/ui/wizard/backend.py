"""Step 5: start the bot backend (port, context, parallel chats), wait for it to be healthy, then
show botserver's settings and write them into a bot's config.csv or botserver's .env."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from gbdesk.backend.supervisor import BackendState
from gbdesk.catalog.model import BOTSERVER_EMBEDDING_MODEL
from gbdesk.errors import GbdeskError, os_error_words
from gbdesk.options import DEFAULT_CTX, DEFAULT_PARALLEL, STARTER
from gbdesk.ui.backend_control import BackendView
from gbdesk.ui.backend_widgets import BackendStatusLabel
from gbdesk.ui.state import AppState
from gbdesk.ui.widgets import (
    Banner,
    Card,
    FlowLayout,
    choose_env_file,
    labelled,
    muted,
    option_spin,
    primary_button,
)
from gbdesk.ui.wizard.base import WizardPage
from gbdesk.ui.workers import TaskContext, run_task


def ensure_embedding_model(ctx: TaskContext, model_id: str) -> None:
    """Download the catalogue's embedding model unless it is installed (runs in a worker).

    Raises:
        GbdeskError: the download fails (the message says why and what to do).
    """
    from gbdesk.backend.errors import ModelLoadError
    from gbdesk.backend.serve import resolve_model
    from gbdesk.catalog.loader import load_catalog
    from gbdesk.ui.wizard.download import run_download, spec_for

    try:
        resolve_model(model_id)
        return
    except ModelLoadError:
        pass
    (quant,) = load_catalog().require(model_id).quants
    run_download(ctx, spec_for(model_id, quant.name))


def botserver_values(model: str, api_key: str | None) -> Any:
    """The values botserver needs (runs in a worker: it looks the model up)."""
    from gbdesk.backend.botserver_link import backend_values

    return backend_values(model=model, api_key=api_key)


def write_values(values: Any, bot_dir: str, env_file: str) -> list[Path]:
    """Write ``values`` into the bot's config.csv and/or the .env file; returns the files.

    Raises:
        UsageError: ``bot_dir`` is not a bot package folder.
        ConfigError: a file cannot be written.
    """
    from gbdesk.backend.botserver_link import bot_config_path, write_botserver_config

    config_csv = bot_config_path(bot_dir) if bot_dir else None
    return write_botserver_config(values, config_csv=config_csv, env_file=env_file or None)


class BackendPage(WizardPage):
    step_title = "Start the bot backend"
    step_detail = "an OpenAI-compatible server on this computer for your bot"

    def __init__(self, state: AppState) -> None:
        super().__init__(
            state,
            "Start the bot backend",
            "gbdesk serves the model on this computer with the same API as OpenAI, for "
            "botserver and for the chat window. It listens only on this computer "
            f"({state.settings.backend_host}).",
        )
        settings_card = Card("How it runs")
        # Side by side when there is room, stacked when the window is narrow.
        controls = FlowLayout(spacing=16)
        settings = state.settings
        self.port = option_spin("backend_port", settings.backend_port, minimum=1024)
        self.context = option_spin(
            "context_length", settings.context_length or DEFAULT_CTX, minimum=512
        )
        self.context.setSingleStep(1024)
        self.context.setSuffix(" tokens")
        self.parallel = option_spin(
            "parallel", settings.parallel or DEFAULT_PARALLEL, automatic=False
        )
        for caption, widget in (
            ("Port", self.port),
            ("Context", self.context),
            ("Parallel chats", self.parallel),
        ):
            controls.add(labelled(caption, widget))
        settings_card.body.addLayout(controls)
        self.embeddings = QCheckBox("Knowledge base embeddings")
        self.embeddings.setToolTip(
            f"Also serve botserver's embedding model, {BOTSERVER_EMBEDDING_MODEL}"
        )
        self.embeddings.setChecked(bool(settings.embedding_model))
        settings_card.body.addWidget(self.embeddings)
        settings_card.body.addWidget(
            muted(
                f"Also serves botserver's embedding model ({BOTSERVER_EMBEDDING_MODEL}, "
                "downloaded once, about 130 MB) for the bot's knowledge base."
            )
        )
        self.embedding_status = muted("", wrap=True)
        settings_card.body.addWidget(self.embedding_status)
        # The step's action, right under its settings: Start and Stop first, the state after
        # them (it wraps), so a narrow window never pushes Start out of view.
        row = QHBoxLayout()
        self.status = BackendStatusLabel(state.backend)
        self.start_button = primary_button("Start")
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(state.backend.stop)
        row.addWidget(self.start_button, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(self.stop_button, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(self.status, 1)
        settings_card.body.addLayout(row)
        self.body.addWidget(settings_card)
        self.banner = Banner()
        self.body.addWidget(self.banner)

        self.botserver_card = Card("botserver's settings")
        self.botserver_card.body.addWidget(
            muted(
                "Point your bot at this backend: these lines go into the bot's config.csv "
                "(llm-*) or botserver's .env (LLM_*). Other lines in those files stay as they are."
            )
        )
        self.values_grid = QGridLayout()
        self.values_grid.setHorizontalSpacing(24)
        self.values_grid.setVerticalSpacing(2)
        self.botserver_card.body.addLayout(self.values_grid)
        self.bot_dir = QLineEdit()
        self.bot_dir.setPlaceholderText("the bot's folder, e.g. …/default.gbai")
        self.env_file = QLineEdit()
        self.env_file.setPlaceholderText("botserver's .env file")
        targets = QFormLayout()
        targets.setHorizontalSpacing(16)
        targets.addRow("Bot folder", self._with_browse(self.bot_dir, self._choose_bot_dir))
        targets.addRow(".env file", self._with_browse(self.env_file, self._choose_env_file))
        self.botserver_card.body.addLayout(targets)
        write_row = QHBoxLayout()
        self.write_result = muted("", wrap=True)
        self.write_button = QPushButton("Write the settings")
        self.write_button.clicked.connect(self.write)
        write_row.addWidget(self.write_result, 1)
        write_row.addWidget(self.write_button)
        self.botserver_card.body.addLayout(write_row)
        self.botserver_card.hide()
        self.body.addWidget(self.botserver_card)
        self.body.addStretch(1)

        self.values: Any = None
        self._values_busy = False
        self._write_busy = False
        state.backend.state_changed.connect(self._on_backend)
        self._on_backend(state.backend.view)

    @staticmethod
    def _with_browse(edit: QLineEdit, slot) -> QWidget:
        box = QWidget()
        layout = QHBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(edit, 1)
        browse = QPushButton("Choose…")
        browse.clicked.connect(slot)
        layout.addWidget(browse)
        return box

    # --- entering ------------------------------------------------------------------------

    def enter(self) -> None:
        """Take the context and parallel chats chosen on the model step."""
        from gbdesk.ui.wizard.choose_model import ChooseModelPage

        if self.wizard is None or self.state.backend.is_running():
            return
        choose = self.wizard.page_of(ChooseModelPage)
        self.context.setValue(choose.context.value())
        self.parallel.setValue(choose.parallel.value())
        self.start_button.setFocus()  # the step's one action: Space or Enter starts it

    # --- backend -------------------------------------------------------------------------

    def start(self) -> None:
        self.banner.clear()
        if not self.embeddings.isChecked():
            self._start_backend("")
            return
        self.start_button.setEnabled(False)
        self.embeddings.setEnabled(False)
        self.embedding_status.setText("Getting the knowledge base model ready…")
        run_task(
            "download the embedding model",
            lambda ctx: ensure_embedding_model(ctx, BOTSERVER_EMBEDDING_MODEL),
            on_done=lambda _result: self._start_backend(BOTSERVER_EMBEDDING_MODEL),
            on_failed=self._embedding_failed,
        )

    def _embedding_failed(self, error: GbdeskError) -> None:
        self.embedding_status.setText("")
        self.embeddings.setEnabled(True)
        self.start_button.setEnabled(True)
        self.banner.show_message(
            f"The knowledge base model could not be downloaded: {error.message}",
            error.fix or "check the connection and try again, or untick knowledge base embeddings",
        )

    def _start_backend(self, embedding_model: str) -> None:
        self.embedding_status.setText(
            "Embeddings will be served for botserver's knowledge base." if embedding_model else ""
        )
        try:
            self.state.update_settings(
                backend_port=self.port.value(),
                context_length=self.context.value(),
                parallel=self.parallel.value(),
                embedding_model=embedding_model,
            )
        except OSError as exc:
            self.banner.show_message(
                f"Cannot save the settings: {os_error_words(exc)}.",
                "check that the config folder is writable",
            )
            self.start_button.setEnabled(True)
            return
        self.state.backend.restart(self.state.settings.model or None)

    def use_another_port(self) -> None:
        """Pick a free port, show it, and start the backend there."""
        self.port.setValue(self.state.backend.use_another_port())

    def _on_backend(self, view: BackendView) -> None:
        busy = view.phase.busy
        # Stop first: a Start that is disabled while it had the focus hands it to the next
        # button in the row (Stop), not to the wizard's Close.
        self.stop_button.setEnabled(view.running and view.phase is not BackendState.STOPPING)
        self.start_button.setEnabled(not busy)
        self.start_button.setText("Restart" if view.phase is BackendState.READY else "Start")
        for widget in (self.port, self.context, self.parallel, self.embeddings):
            widget.setEnabled(not busy)
        if view.phase in {BackendState.FAILED, BackendState.CRASHED}:
            from gbdesk.ui.backend_control import PORT_TAKEN

            action = (
                ("Use another port", self.use_another_port) if view.action == PORT_TAKEN else None
            )
            self.banner.show_message(view.message, view.fix, action=action)
        elif view.phase is BackendState.READY:
            self.banner.clear()
            self._load_values()
            if self.wizard is not None and self.isVisible():
                self.complete_changed.emit()  # Next is enabled first: a disabled one takes no focus
                self.wizard.next_button.setFocus()  # done here: Enter goes on
        if view.phase is not BackendState.READY:
            self.botserver_card.setVisible(False)
        self.complete_changed.emit()

    def _load_values(self) -> None:
        if self._values_busy:
            return
        self._values_busy = True
        model = self.state.settings.model or STARTER
        api_key = self.state.backend_api_key()
        run_task(
            "botserver settings",
            lambda _ctx: botserver_values(model, api_key),
            on_done=self._show_values,
            on_failed=self.banner.show_error,
            on_finished=lambda: setattr(self, "_values_busy", False),
        )

    def _show_values(self, values: Any) -> None:
        from gbdesk.backend.botserver_link import masked

        self.values = values
        while self.values_grid.count():
            item = self.values_grid.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        # The bot's config.csv lines, then botserver's .env lines (one under the other: long
        # values wrap instead of pushing the page sideways).
        columns = (
            ("the bot's config.csv", [f"{k},{v}" for k, v in masked(values.config_csv).items()]),
            ("botserver's .env", [f"{k}={v}" for k, v in masked(values.env).items()]),
        )
        row = 0
        for caption, lines in columns:
            heading = muted(caption)
            heading.setContentsMargins(0, 8 if row else 0, 0, 0)  # a gap above the second
            self.values_grid.addWidget(heading, row, 0)
            for line in lines:
                row += 1
                value = QLabel(line)
                value.setObjectName("Mono")
                value.setWordWrap(True)
                value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
                self.values_grid.addWidget(value, row, 0)
            row += 1
        self.values_grid.setColumnStretch(0, 1)
        self.botserver_card.setVisible(self.state.backend.is_ready())

    def value_lines(self) -> list[str]:
        """The lines shown (API key masked), as text."""
        lines = []
        for index in range(self.values_grid.count()):
            item = self.values_grid.itemAt(index)
            widget = item.widget() if item is not None else None
            if isinstance(widget, QLabel) and widget.objectName() == "Mono":
                lines.append(widget.text())
        return lines

    # --- writing botserver's files -------------------------------------------------------

    def _choose_bot_dir(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "The bot's folder (<bot>.gbai)")
        if folder:
            self.bot_dir.setText(folder)

    def _choose_env_file(self) -> None:
        choose_env_file(self, self.env_file)

    def write(self) -> None:
        bot_dir, env_file = self.bot_dir.text().strip(), self.env_file.text().strip()
        if self.values is None or self._write_busy:
            return
        if not bot_dir and not env_file:
            self.banner.show_message(
                "Choose the bot's folder or botserver's .env file first.",
                "use the Choose… buttons, or skip this: the values are shown above",
            )
            return
        self.banner.clear()
        self._write_busy = True
        self.write_button.setEnabled(False)
        values = self.values
        run_task(
            "write botserver's settings",
            lambda _ctx: write_values(values, bot_dir, env_file),
            on_done=self._on_written,
            on_failed=self.banner.show_error,
            on_finished=self._on_write_finished,
        )

    def _on_written(self, paths: list[Path]) -> None:
        self.write_result.setText("Written: " + ", ".join(str(p) for p in paths))

    def _on_write_finished(self) -> None:
        self._write_busy = False
        self.write_button.setEnabled(True)

    # --- wizard hooks --------------------------------------------------------------------

    def is_complete(self) -> bool:
        return self.state.backend.is_ready()

    def can_skip(self) -> bool:
        return not self.state.backend.is_running()

    def summary_line(self) -> str:
        view = self.state.backend.view
        if view.phase is BackendState.READY:
            return f"Bot backend: ready at {view.url} (keeps running in the tray)."
        return "Bot backend: not started (start it from the Chat page or the Dashboard)."
