"""Models: what is installed (use, import a GGUF, delete), the Hub search (any GGUF, a verdict
per quant, download) and the handbook's catalogue with verdicts (and, with the workers of
Settings > Workers, the models that fit only across the machines: gbdesk/ui/pooled_models.py).

The library scan, imports (a copy that can take minutes), deletions and the recommender all run
in workers.
"""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from gbdesk.errors import GbdeskError
from gbdesk.options import DEFAULT_CTX, DEFAULT_PARALLEL
from gbdesk.ui.queued_download import queue_download
from gbdesk.ui.state import AppState
from gbdesk.ui.widgets import (
    Banner,
    VerdictBadge,
    human_bytes,
    muted,
    page_layout,
)
from gbdesk.ui.wizard.choose_model import VERDICTS, recommend_for
from gbdesk.ui.workers import TaskHandle, run_task


def _probe_and_recommend(profile: Any, n_ctx: int, n_parallel: int) -> tuple[Any, tuple]:
    if profile is None:
        from gbdesk.hardware.probe import probe

        profile = probe()
    return profile, recommend_for(profile, n_ctx, n_parallel, "")


def list_installed(_ctx: Any) -> list:
    """The library's models, and the bundled starter model (when it is not in the library)."""
    from gbdesk.app.installed import installed_models

    return installed_models()


def same_model(served: str, path: str) -> bool:
    """Whether the backend's ``served`` model (a path, or "starter") is the file at ``path``."""
    if not served:
        return False
    if served == "starter":
        from gbdesk.starter import starter_model_path

        starter = starter_model_path()
        return starter is not None and os.path.realpath(starter) == os.path.realpath(path)
    return os.path.realpath(served) == os.path.realpath(path)


def import_and_check(ctx: Any, path: str) -> tuple[Any, str]:
    """Import ``path`` into the model library; returns the model and the warning for a model
    without a chat template ("" otherwise).

    Raises:
        LibraryError: the file cannot be imported.
    """
    from gbdesk.backend.chat_template import template_warning
    from gbdesk.download.library import ModelLibrary

    model = ModelLibrary().import_file(
        path,
        on_progress=lambda done, total: ctx.report((done, total)),
        cancel=ctx.cancel_event,
    )
    return model, template_warning(model.path)


def serve_model(state: AppState, path: str) -> None:
    """Make ``path`` the model to serve (saved in the settings) and (re)start the backend."""
    state.update_settings(model=path)
    state.backend.restart(path)


class ModelsPage(QWidget):
    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        layout = page_layout(
            self,
            "Models",
            "Models on this computer, any GGUF model on the Hub, and the handbook's catalogue, "
            "each with a verdict for this computer.",
        )
        self.banner = Banner()
        layout.addWidget(self.banner)
        self.tabs = QTabWidget()
        layout.addWidget(self.tabs, 1)

        installed = QWidget()
        inst_layout = QVBoxLayout(installed)
        inst_layout.setContentsMargins(0, 10, 0, 0)
        self.installed_table = self._table(["Model", "Quant", "Size", "Source", "In use"])
        inst_layout.addWidget(self.installed_table, 1)
        self.import_progress = QProgressBar()
        self.import_progress.setRange(0, 1000)
        self.import_progress.hide()
        inst_layout.addWidget(self.import_progress)
        buttons = QHBoxLayout()
        self.use_button = QPushButton("Serve this model")
        self.use_button.clicked.connect(self.use_selected)
        self.import_button = QPushButton("Import a GGUF file…")
        self.import_button.clicked.connect(self.choose_import)
        self.delete_button = QPushButton("Delete")
        self.delete_button.setProperty("danger", True)
        self.delete_button.clicked.connect(self.delete_selected)
        buttons.addWidget(self.use_button)
        buttons.addStretch(1)
        buttons.addWidget(self.import_button)
        buttons.addWidget(self.delete_button)
        inst_layout.addLayout(buttons)
        self.tabs.addTab(installed, "Installed")

        from gbdesk.ui.hub_browser import HubBrowser

        self.hub_browser = HubBrowser(state)
        self.hub_browser.downloaded.connect(lambda _result: self.refresh_installed())
        self.tabs.addTab(self.hub_browser, "Search the Hub")

        catalogue = QWidget()
        cat_layout = QVBoxLayout(catalogue)
        cat_layout.setContentsMargins(0, 10, 0, 0)
        self.catalogue_status = muted("Estimating for this computer…")
        cat_layout.addWidget(self.catalogue_status)
        self.catalogue_table = self._table(["Model", "Quant", "Verdict", "Speed", "Download"])
        cat_layout.addWidget(self.catalogue_table, 1)
        # Models that fit only with the workers of Settings > Workers (hidden without workers).
        from gbdesk.ui.pooled_models import PooledModelsSection

        self.pooled = PooledModelsSection(state, self._pooled_fit_settings)
        self.pooled.downloaded.connect(lambda _name: self.refresh_installed())
        cat_layout.addWidget(self.pooled, 1)
        self.tabs.addTab(catalogue, "From the handbook")

        self.installed: list = []
        self.recommendations: tuple = ()
        self._task: TaskHandle | None = None
        self._serving_request = ""  # the model "Serve this model" asked for, until it settles
        self._serving_warning = ""  # that model has no chat template: what to tell about it
        self.installed_table.itemSelectionChanged.connect(self._update_buttons)
        state.backend.state_changed.connect(self._on_backend)
        self.refresh_installed()
        self.refresh_catalogue()

    @staticmethod
    def _table(headers: list[str]) -> QTableWidget:
        table = QTableWidget(0, len(headers))
        table.setHorizontalHeaderLabels(headers)
        table.verticalHeader().hide()
        table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        table.setAlternatingRowColors(True)
        table.setShowGrid(False)
        header = table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in range(1, len(headers)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        return table

    # --- installed ---------------------------------------------------------------------

    def refresh_installed(self) -> None:
        run_task(
            "list installed models",
            list_installed,
            on_done=self._show_installed,
            on_failed=self.banner.show_error,
        )

    def _show_installed(self, models: list) -> None:
        self.installed = models
        table = self.installed_table
        table.setRowCount(len(models))
        sources = {"hub": "downloaded", "imported": "imported", "bundled": "bundled with gbdesk"}
        for row, model in enumerate(models):
            source = sources.get(model.source, model.source)
            for column, text in enumerate(
                [model.name, model.quant or "-", human_bytes(model.size), source, ""]
            ):
                item = QTableWidgetItem(text)
                item.setToolTip(model.path)
                table.setItem(row, column, item)
        if models and table.currentRow() < 0:
            table.selectRow(0)
        self._mark_serving()
        self._update_buttons()

    def serving_row(self) -> int:
        """The row of the model the backend serves (or is starting with), or -1."""
        served = self.state.backend.current_model()
        for row, model in enumerate(self.installed):
            if same_model(served, model.path):
                return row
        return -1

    def _mark_serving(self) -> None:
        view = self.state.backend.view
        serving = self.serving_row()
        for row in range(self.installed_table.rowCount()):
            item = self.installed_table.item(row, 4)
            if item is not None:
                text = ("Serving" if view.phase == "ready" else view.text) if row == serving else ""
                item.setText(text)

    def _on_backend(self, view: Any) -> None:
        """Follow the backend: mark the model in use, and report a "Serve this model"."""
        self._mark_serving()
        self._update_buttons()
        name = self._serving_request
        if not name:
            return
        if view.phase in {"stopping", "starting", "loading", "restarting"}:
            self.banner.show_message(
                f"Serving {name}: {view.text.lower().rstrip('…')}…", level="info"
            )
        elif view.phase == "ready":
            self._serving_request = ""
            served = f"The backend now serves {name}."
            if self._serving_warning:  # no chat template: say so, and which one is used
                self.banner.show_message(f"{served} {self._serving_warning}", level="warning")
            else:
                self.banner.show_message(served, level="success")
        elif view.phase in {"failed", "crashed"}:
            self._serving_request = ""
            from gbdesk.ui.backend_control import PORT_TAKEN

            action = (
                ("Use another port", self.state.backend.use_another_port)
                if view.action == PORT_TAKEN
                else None
            )
            self.banner.show_message(
                f"Could not serve {name}: {view.message}", view.fix, action=action
            )

    def selected_model(self) -> Any:
        row = self.installed_table.currentRow()
        return self.installed[row] if 0 <= row < len(self.installed) else None

    def _update_buttons(self) -> None:
        busy = self._task is not None
        model = self.selected_model()
        has = model is not None
        serving = has and self.serving_row() == self.installed_table.currentRow()
        self.use_button.setEnabled(has and not busy and not serving)
        self.delete_button.setEnabled(
            has and not busy and not serving and model.source != "bundled"
        )
        self.import_button.setEnabled(not busy)

    def use_selected(self) -> None:
        model = self.selected_model()
        if model is None:
            return
        from gbdesk.backend.chat_template import template_warning

        serve_model(self.state, model.path)
        self._serving_request = model.name
        self._serving_warning = ""
        self._on_backend(self.state.backend.view)
        path, name = model.path, model.name
        run_task(
            "read the model's chat template",
            lambda _ctx: template_warning(path),
            on_done=lambda warning: self._on_template_checked(path, name, warning),
        )

    def _on_template_checked(self, path: str, name: str, warning: str) -> None:
        """A model without a chat template: warned while it loads, and when it serves."""
        if not warning:
            return
        if self._serving_request == name:
            self._serving_warning = warning
            self.banner.show_message(f"Serving {name}. {warning}", level="warning")
        elif self.state.backend.is_ready() and same_model(self.state.backend.current_model(), path):
            # It was ready before its header was read.
            self.banner.show_message(f"The backend now serves {name}. {warning}", level="warning")

    def choose_import(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(
            self, "Import a GGUF model", "", "GGUF models (*.gguf)"
        )
        if path:
            self.import_file(path)

    def import_file(self, path: str) -> None:
        self.banner.clear()
        self.import_progress.setValue(0)
        self.import_progress.show()
        self._task = run_task(
            "import a model",
            lambda ctx: import_and_check(ctx, path),
            on_progress=lambda value: self.import_progress.setValue(
                round(1000 * value[0] / max(1, value[1]))
            ),
            on_done=self._on_imported,
            on_failed=self.banner.show_error,
            on_finished=self._after_change,
        )
        self._update_buttons()

    def _on_imported(self, result: tuple[Any, str]) -> None:
        model, warning = result
        text = f"Imported {model.name} ({human_bytes(model.size)})."
        if warning:  # a base model: said now, not after it loops in a chat
            self.banner.show_message(f"{text} {warning}", level="warning")
        else:
            self.banner.show_message(text, level="success")

    def delete_selected(self) -> None:
        from gbdesk.download.library import ModelLibrary

        model = self.selected_model()
        if model is None:
            return
        answer = QMessageBox.question(
            self,
            "Delete the model",
            f"Delete {model.name} ({human_bytes(model.size)}) from this computer?",
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        self._task = run_task(
            "delete a model",
            lambda _ctx: ModelLibrary().remove(model.id),
            on_done=lambda freed: self.banner.show_message(
                f"Deleted {model.name}; {human_bytes(freed)} freed.", level="success"
            ),
            on_failed=self.banner.show_error,
            on_finished=self._after_change,
        )
        self._update_buttons()

    def _after_change(self) -> None:
        self._task = None
        self.import_progress.hide()
        self.refresh_installed()

    # --- catalogue ---------------------------------------------------------------------

    def _pooled_fit_settings(self) -> Any:
        """The context and parallel chats the pooled section plans for: the settings'."""
        from gbdesk.fit.estimator import FitSettings

        settings = self.state.settings
        return FitSettings(
            n_ctx=settings.context_length or DEFAULT_CTX,
            n_parallel=settings.parallel or DEFAULT_PARALLEL,
        )

    def refresh_catalogue(self) -> None:
        settings = self.state.settings
        args = (
            self.state.profile,
            settings.context_length or DEFAULT_CTX,
            settings.parallel or DEFAULT_PARALLEL,
        )
        run_task(
            "recommend models",
            lambda _ctx: _probe_and_recommend(*args),
            on_done=self._show_catalogue,
            on_failed=self.banner.show_error,
        )

    def _show_catalogue(self, result: tuple[Any, tuple]) -> None:
        from gbdesk.fit.recommend import context_words

        profile, recommendations = result
        if self.state.profile is None:
            self.state.set_profile(profile)
        self.recommendations = recommendations
        table = self.catalogue_table
        table.setRowCount(len(recommendations))
        for row, rec in enumerate(recommendations):
            fit = rec.fit
            table.setItem(row, 0, QTableWidgetItem(rec.model_name))
            table.setItem(row, 1, QTableWidgetItem(rec.quant))
            badge_holder = QWidget()
            holder_layout = QHBoxLayout(badge_holder)
            holder_layout.setContentsMargins(6, 2, 6, 2)
            holder_layout.addWidget(VerdictBadge(VERDICTS.get(fit.verdict, "no_fit")))
            table.setCellWidget(row, 2, badge_holder)
            speed = QTableWidgetItem(f"~{fit.speed.generation_tps:.1f} tok/s")
            speed.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            table.setItem(row, 3, speed)
            table.setCellWidget(row, 4, self._download_button(rec))
            tip = f"{rec.reason}; {context_words(fit)}" if fit.runs else rec.reason
            for column in (0, 1, 3):
                cell = table.item(row, column)
                if cell is not None:  # every one was set above
                    cell.setToolTip(tip)
        table.resizeRowsToContents()
        fitting = sum(1 for r in recommendations if r.fit.runs)
        self.catalogue_status.setText(
            f"{fitting} of {len(recommendations)} handbook models run on this computer. Hover "
            "a row for the reason; Download queues one (it then shows on the Installed tab), "
            "or find any model on the Search the Hub tab."
        )

    def _download_button(self, rec: Any) -> QPushButton:
        """The row's Download (with the size), or a disabled "On this computer"."""
        if rec.on_disk:
            button = QPushButton("On this computer")
            button.setEnabled(False)
            return button
        button = QPushButton(f"Download {human_bytes(rec.fit.download_bytes)}")
        button.setToolTip(rec.reason)
        button.setEnabled(rec.fit.fits_disk)
        button.clicked.connect(lambda: self.download_recommendation(rec, button))
        return button

    def download_recommendation(self, rec: Any, button: QPushButton) -> None:
        """Queue a handbook model's quant in the app's download queue (like the Hub tab's)."""
        from gbdesk.download.job import JobState
        from gbdesk.download.spec import resolve_spec

        def ready_again() -> None:
            button.setText(f"Download {human_bytes(rec.fit.download_bytes)}")
            button.setEnabled(True)

        def finished(job: Any) -> None:
            if job.state is JobState.DONE:
                button.setText("Downloaded")
                self.banner.show_message(
                    f"Downloaded {rec.model_name} {rec.quant}: it is on the Installed tab, "
                    "ready to serve.",
                    level="success",
                )
                self.refresh_installed()
                return
            ready_again()
            if job.state is JobState.FAILED and job.error is not None:
                self.banner.show_error(job.error)

        def refused(error: GbdeskError) -> None:
            self.banner.show_error(error)
            ready_again()

        button.setEnabled(False)
        button.setText("Queued")
        name = f"{rec.model_id}:{rec.quant}"
        queue_download(
            self,
            self.state.downloads,
            lambda: resolve_spec(name),
            on_progress=lambda p: button.setText(f"{round(100 * p.done / max(1, p.total))} %"),
            on_done=finished,
            on_refused=refused,
        )
