"""Settings: models folder, Hub endpoint and token, backend port and context, start at login.

The Hub token is masked and stored through :mod:`gbdesk.secrets` (the OS keyring, or a 0600
file), never in the settings file. Saving validates every field first and changes nothing when
one is wrong.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from gbdesk.errors import GbdeskError, os_error_words
from gbdesk.hardware.rpc import WorkerError, parse_workers
from gbdesk.options import option
from gbdesk.paths import app_paths
from gbdesk.ui.state import AppState
from gbdesk.ui.widgets import (
    Banner,
    Card,
    ElidingComboBox,
    muted,
    option_spin,
    primary_button,
    scrolling_page_layout,
)
from gbdesk.ui.workers import run_task


class SettingsPage(QWidget):
    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        layout = scrolling_page_layout(
            self,
            "Settings",
            "Where models go, how to reach the Hub, and how the bot backend runs.",
            spacing=14,
        )
        self.banner = Banner()
        layout.addWidget(self.banner)
        self.restart_banner = Banner()  # what the running backend does not have yet
        layout.addWidget(self.restart_banner)

        storage = Card("Models and the Hub")
        form = QFormLayout()
        form.setHorizontalSpacing(16)
        form.setVerticalSpacing(10)
        self.models_dir = QLineEdit()
        self.models_dir.setPlaceholderText(str(app_paths().models_dir))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_models_dir)
        row = QHBoxLayout()
        row.addWidget(self.models_dir, 1)
        row.addWidget(browse)
        form.addRow("Models folder", row)
        self.hub_endpoint = QLineEdit()
        self.hub_endpoint.setPlaceholderText("https://huggingface.co")
        form.addRow("Hub endpoint", self.hub_endpoint)
        self.hub_token = QLineEdit()
        self.hub_token.setEchoMode(QLineEdit.EchoMode.Password)
        self.hub_token.setPlaceholderText("hf_… (only for gated or private models)")
        form.addRow("Hub token", self.hub_token)
        storage.body.addLayout(form)
        storage.body.addWidget(
            muted(
                "The token is kept in the system keyring (or a file only you can read), "
                "never in the settings file or the log."
            )
        )
        layout.addWidget(storage)

        backend = Card("Bot backend")
        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)  # fields under, if narrow
        form.setHorizontalSpacing(16)
        form.setVerticalSpacing(10)
        self.model = ElidingComboBox()  # a long file name ends in "…" when narrow
        self.model.setToolTip("The model the bot backend serves (Models page: import more)")
        form.addRow("Model", self.model)
        self.port = option_spin("backend_port", option("backend_port").default, minimum=1024)
        form.addRow("Port", self.port)
        self.context = option_spin("context_length", 0)
        self.context.setSingleStep(1024)
        form.addRow("Context length (tokens)", self.context)
        self.parallel = option_spin("parallel", 0)
        form.addRow("Parallel chats", self.parallel)
        self.gpu_layers = QSpinBox()
        self.gpu_layers.setRange(-1, 999)
        self.gpu_layers.setSpecialValueText("Automatic")  # -1: as many as fit in the VRAM
        self.gpu_layers.setToolTip(option("gpu_layers").help)
        form.addRow("GPU layers", self.gpu_layers)
        self.threads = option_spin("threads", 0)
        form.addRow("CPU threads", self.threads)
        self.queue_limit = option_spin("queue_limit", option("queue_limit").default)
        form.addRow("Waiting requests", self.queue_limit)
        self.alias = QLineEdit()
        self.alias.setToolTip(option("alias").help)
        self.alias.setPlaceholderText("the model's file name")
        form.addRow("Model name for clients", self.alias)
        self.repack = QComboBox()
        for label, value in (("Automatic", None), ("On", True), ("Off", False)):
            self.repack.addItem(label, value)
        self.repack.setToolTip(option("repack").help)
        form.addRow("Repacked weights", self.repack)
        self.rpc_workers = QLineEdit()
        self.rpc_workers.setToolTip(
            "Other computers running the gbdesk worker (Node page) that share the model with"
            " this one, as address:port separated by commas"
        )
        self.rpc_workers.setPlaceholderText("none: this computer alone (e.g. 192.168.1.20:50052)")
        form.addRow("Workers", self.rpc_workers)
        self.start_at_login = QCheckBox("Start the backend when I log in")
        form.addRow("", self.start_at_login)
        self.resume_backend = QCheckBox("Serve the model again when gbdesk opens")
        self.resume_backend.setToolTip(
            "After Quit and a relaunch, the backend serves the same model again, so botserver "
            "and the shard heartbeat keep working"
        )
        form.addRow("", self.resume_backend)
        backend.body.addLayout(form)
        layout.addWidget(backend)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.revert_button = QPushButton("Revert")
        self.revert_button.clicked.connect(self.load)
        self.save_button = primary_button("Save")
        self.save_button.clicked.connect(self.save)
        buttons.addWidget(self.revert_button)
        buttons.addWidget(self.save_button)
        layout.addLayout(buttons)
        layout.addStretch(1)
        self._models: list = []
        state.backend.state_changed.connect(lambda _view: self.show_pending())
        state.settings_changed.connect(lambda _settings: self.show_pending())
        self.load()
        self.refresh_models()

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        self.refresh_models()  # a model imported or served meanwhile
        self.show_pending()

    def refresh_models(self) -> None:
        """Fill the model choice with what is installed (listed in a worker)."""
        from gbdesk.ui.pages.models import list_installed

        run_task("list installed models", list_installed, on_done=self._fill_models)

    def _fill_models(self, models: list) -> None:
        self._models = models
        self._select_model(self.state.settings.model)

    def _select_model(self, current: str) -> None:
        from gbdesk.ui.backend_widgets import model_label
        from gbdesk.ui.pages.models import same_model

        self.model.blockSignals(True)
        self.model.clear()
        self.model.addItem("The starter model (bundled)", "")
        selected = 0
        for model in self._models:
            if model.source == "bundled":
                continue
            self.model.addItem(model.name, model.path)
            if current and same_model(current, model.path):
                selected = self.model.count() - 1
        if current and selected == 0 and not same_model("starter", current):
            self.model.addItem(model_label(current), current)  # a catalogue id or moved file
            selected = self.model.count() - 1
        self.model.setCurrentIndex(selected)
        self.model.blockSignals(False)

    def show_pending(self) -> None:
        """ "Restart the backend to apply" while the running backend lacks saved settings."""
        pending = self.state.backend.pending_changes()
        if not pending:
            self.restart_banner.clear()
            return
        self.restart_banner.show_message(
            "The running backend does not have your new "
            + ", ".join(pending)
            + " yet. Restart the backend to apply.",
            level="warning",
            action=("Restart the backend", self.state.backend.restart),
        )

    def load(self) -> None:
        from gbdesk.download.hub import HUB_TOKEN_SECRET
        from gbdesk.secrets import get_secret

        settings = self.state.settings
        self.models_dir.setText(settings.models_dir)
        self.hub_endpoint.setText(settings.hub_endpoint)
        self.hub_token.setText(get_secret(HUB_TOKEN_SECRET) or "")
        self.port.setValue(settings.backend_port)
        self.context.setValue(settings.context_length)
        self.parallel.setValue(settings.parallel)
        gpu = settings.gpu_layers
        self.gpu_layers.setValue(int(gpu) if gpu.isdigit() else -1)
        self._select_model(settings.model)
        self.threads.setValue(settings.threads)
        self.queue_limit.setValue(settings.queue_limit)
        self.alias.setText(settings.alias)
        self.repack.setCurrentIndex(max(0, self.repack.findData(settings.repack)))
        self.rpc_workers.setText(settings.rpc_workers)
        self.start_at_login.setChecked(settings.start_backend_at_login)
        self.resume_backend.setChecked(settings.resume_backend)
        self.banner.clear()

    def _browse_models_dir(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Models folder", self.models_dir.text())
        if folder:
            self.models_dir.setText(folder)

    def save(self) -> None:
        from gbdesk.download.hub import HUB_TOKEN_SECRET
        from gbdesk.secrets import delete_secret, set_secret

        endpoint = self.hub_endpoint.text().strip()
        if endpoint and not endpoint.startswith(("http://", "https://")):
            self.banner.show_message(
                f"The Hub endpoint {endpoint!r} is not a web address.",
                "write it as https://host (for example https://hf-mirror.com) or leave it empty",
            )
            return
        workers = self.rpc_workers.text().strip()
        try:
            parse_workers(workers)
        except WorkerError as exc:
            self.banner.show_message(f"Workers: {exc.message}.", exc.fix or "")
            return
        token = self.hub_token.text().strip()
        try:
            if token:
                set_secret(HUB_TOKEN_SECRET, token)
            else:
                delete_secret(HUB_TOKEN_SECRET)
            self.state.update_settings(
                models_dir=self.models_dir.text().strip(),
                hub_endpoint=endpoint.rstrip("/"),
                backend_port=self.port.value(),
                context_length=self.context.value(),
                parallel=self.parallel.value(),
                gpu_layers="auto" if self.gpu_layers.value() < 0 else str(self.gpu_layers.value()),
                model=self.model.currentData() or "",
                threads=self.threads.value(),
                queue_limit=self.queue_limit.value(),
                alias=self.alias.text().strip(),
                repack=self.repack.currentData(),
                rpc_workers=workers,
                start_backend_at_login=self.start_at_login.isChecked(),
                resume_backend=self.resume_backend.isChecked(),
            )
            self._apply_login_item()
        except GbdeskError as exc:
            self.banner.show_message(exc.message, exc.fix or "")
            return
        except OSError as exc:
            self.banner.show_message(
                f"Cannot save the settings: {os_error_words(exc)}.",
                "check that the config folder is writable",
            )
            return
        # What the running backend lacks is named in the banner below, with a Restart button
        # (the schema's restart flag decides; see BackendController.pending_changes).
        self.banner.show_message("Settings saved.", level="success")
        self.show_pending()

    def _apply_login_item(self) -> None:
        from gbdesk.ui.autostart import set_start_at_login

        set_start_at_login(self.state.settings.start_backend_at_login)
