"""The models that fit only with the workers of Settings > Workers (the ``rpc_workers`` setting).

Shared by the Models page ("From the handbook" tab) and the wizard's "Choose a model" step. When
workers are set, the workers are probed over llama.cpp's RPC protocol and the catalogue is
planned over the pool in a worker thread (:func:`find_pooled`); each model that does not fit
this computer alone but fits across the machines gets a row with its split, its estimated speed
and a Download button (the app's download queue). A worker that cannot be used is said in plain
words in the section's banner; the rest of the page goes on as before. With no workers set the
section stays hidden.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QLabel,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gbdesk.app.pool import PooledOption
from gbdesk.errors import GbdeskError
from gbdesk.fit.estimator import FitSettings
from gbdesk.fit.pool import ASSUMPTIONS
from gbdesk.hardware.profile import HardwareProfile
from gbdesk.ui.queued_download import queue_download
from gbdesk.ui.state import AppState
from gbdesk.ui.widgets import Banner, WidgetList, human_bytes, muted, section_title
from gbdesk.ui.workers import TaskHandle, run_task

START_WORKER = "start the worker on that computer (Node page > Lend this computer)"
ESTIMATE_TIP = f"An estimate: it {ASSUMPTIONS}."


@dataclass(frozen=True)
class PooledModel:
    """One row: a model x quant that fits only across the pool, its download and whether its
    file is on this computer already."""

    option: PooledOption
    download_bytes: int
    on_disk: bool


@dataclass(frozen=True)
class PooledModels:
    """What :func:`find_pooled` found: the pool's size (this computer and its workers) and the
    models that fit only across it, fastest first."""

    workers: str
    machines: int
    models: tuple[PooledModel, ...]


def find_pooled(workers: str, profile: HardwareProfile, settings: FitSettings) -> PooledModels:
    """Probe ``workers`` and plan the catalogue over this computer and them (runs in a worker:
    probing a worker can take seconds).

    Raises:
        WorkerError: a worker address is invalid or a worker cannot be used (named).
        ConfigError: the catalogue or the calibration file is damaged.
        LibraryError: the model library cannot be read.
        UsageError: the settings are out of range.
    """
    from gbdesk.app.pool import pool_members, pooled_options
    from gbdesk.catalog.loader import load_catalog
    from gbdesk.download.library import ModelLibrary
    from gbdesk.fit.calibration import load_calibration

    members = pool_members(workers)
    catalog = load_catalog()
    options = pooled_options(
        profile, members, settings, catalog=catalog, calibration=load_calibration()
    )
    on_disk = {PurePosixPath(model.path).name for model in ModelLibrary().list_models()}
    models = []
    for option in options:
        entry = catalog.get(option.model_id)
        quant = entry.quant(option.quant) if entry is not None else None
        size = quant.size_bytes if quant is not None else 0
        first = PurePosixPath(quant.files[0]).name if quant is not None and quant.files else ""
        models.append(PooledModel(option, size, bool(first) and first in on_disk))
    return PooledModels(workers, len(members) + 1, tuple(models))


def plain_fix(error: GbdeskError) -> str:
    """The error's fix in the desktop app's words: the core's fixes for a worker may name the
    `gbdesk worker` command or its flags, which mean nothing here."""
    fix = error.fix or ""
    if "gbdesk worker" in fix or "`" in fix or "--" in fix:
        return f"{START_WORKER}, and check its address in Settings > Workers"
    return fix


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


class PooledRow(QFrame):
    """One model of the pool: name and quant, the split sentence, the estimated speed, and its
    Download button."""

    def __init__(self, model: PooledModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        option = model.option
        layout = QGridLayout(self)
        layout.setContentsMargins(12, 10, 12, 10)
        layout.setHorizontalSpacing(12)
        layout.setVerticalSpacing(4)
        self.title = QLabel(f"<b>{option.model_name}</b>  {option.quant}")
        self.title.setWordWrap(True)
        layout.addWidget(self.title, 0, 0)
        self.split = muted(_sentence(option.plan.summary()) + ".")
        self.split.setToolTip(ESTIMATE_TIP)
        layout.addWidget(self.split, 1, 0)
        self.speed = muted(
            f"Estimate: about {option.plan.generation_tps:.1f} tokens/s across the machines "
            "(hover for what it assumes)."
        )
        self.speed.setToolTip(ESTIMATE_TIP)
        layout.addWidget(self.speed, 2, 0)
        self.button = QPushButton()
        self.show_download_ready()
        layout.addWidget(self.button, 0, 1, 2, 1, Qt.AlignmentFlag.AlignRight)
        layout.setColumnStretch(0, 1)
        self.setToolTip(ESTIMATE_TIP)

    def show_download_ready(self) -> None:
        """The button as it rests: Download (with the size), or "On this computer"."""
        if self.model.on_disk:
            self.button.setText("On this computer")
            self.button.setEnabled(False)
            return
        self.button.setText(f"Download {human_bytes(self.model.download_bytes)}")
        self.button.setEnabled(True)


class PooledModelsSection(QWidget):
    """ "Fit only with your workers": the section both pages show when workers are set.

    ``fit_settings`` gives the context and parallel chats to plan for (the page's own controls
    or the settings); the page calls :meth:`refresh` when they change. Settings and profile
    changes refresh it by themselves. ``downloaded`` carries a finished download's model name.
    """

    downloaded = Signal(str)

    def __init__(
        self,
        state: AppState,
        fit_settings: Callable[[], FitSettings],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.state = state
        self._fit_settings = fit_settings
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 8, 0, 0)
        layout.setSpacing(6)
        self.heading = section_title("Fit only with your workers")
        self.heading.setWordWrap(True)
        layout.addWidget(self.heading)
        self.banner = Banner()
        layout.addWidget(self.banner)
        self.status = muted("")
        layout.addWidget(self.status)
        self.list = WidgetList()
        self.list.setSpacing(2)
        self.list.setMinimumHeight(72)  # a row and a half: the window's smallest size holds
        self.list.setVerticalScrollMode(WidgetList.ScrollMode.ScrollPerPixel)
        self.list.hide()
        layout.addWidget(self.list, 1)
        self.result: PooledModels | None = None
        self.rows: list[PooledRow] = []
        self._task: TaskHandle | None = None
        self._stale = False
        self._planned: tuple[str, Any, FitSettings] | None = None  # what was last asked for
        self._waiting_for_backend = False  # the backend holds the workers: asked when it stops
        state.settings_changed.connect(lambda _settings: self.refresh())
        state.profile_changed.connect(lambda _profile: self.refresh())
        state.backend.state_changed.connect(self._on_backend)
        self.hide()
        self.refresh()

    def refresh(self, *, force: bool = False) -> None:
        """Plan again when the workers, the profile or the fit settings changed (or ``force``)."""
        workers = self.state.settings.rpc_workers.strip()
        if not workers:
            self._waiting_for_backend = False
            self._planned = None
            self.result = None
            self.list.clear()
            self.rows = []
            self.banner.clear()
            self.hide()
            return
        profile = self.state.profile
        self.show()
        if profile is None:
            self.status.setText("Waiting for the hardware probe…")
            return
        settings = self._fit_settings()
        planned = (workers, profile, settings)
        if not force and self._planned is not None and _same(self._planned, planned):
            return
        if self._task is not None:  # plan again with the latest values when this one ends
            self._stale = True
            return
        if self._backend_holds_workers():
            # A worker serves one backend at a time: asked now, it would not answer.
            self._waiting_for_backend = True
            self.result = None
            self.list.clear()
            self.rows = []
            self.list.hide()
            self.status.hide()
            self.banner.show_message(
                "Your workers are busy serving this computer's backend, so they cannot say "
                "what they offer now.",
                "the list of the models that need them comes back when the backend stops",
                level="info",
            )
            return
        self._waiting_for_backend = False
        self._planned = planned
        self.heading.setText("Fit only with your workers")
        self.status.setText("Asking your workers what they offer…")
        self.status.show()
        self._task = run_task(
            "plan models over the workers",
            lambda _ctx: find_pooled(workers, profile, settings),
            on_done=self._show,
            on_failed=self._on_failed,
            on_finished=self._on_finished,
        )

    def _backend_holds_workers(self) -> bool:
        """Whether this computer's backend runs with the workers of the settings (it holds
        their connections while it runs)."""
        backend = self.state.backend
        return bool(backend.view.running) and "workers" not in backend.pending_changes()

    def _on_backend(self, view: Any) -> None:
        if self._waiting_for_backend and not view.running:
            self.refresh(force=True)

    def _on_finished(self) -> None:
        self._task = None
        if self._stale:
            self._stale = False
            self.refresh()

    def _on_failed(self, error: GbdeskError) -> None:
        if self._stale or self._planned is None:  # a newer plan follows, or no workers now
            return
        self.list.clear()
        self.rows = []
        self.list.hide()
        self.result = None
        self.banner.show_message(
            f"The models that need your workers cannot be listed: {error.message}.",
            plain_fix(error),
            action=("Try again", lambda: self.refresh(force=True)),
        )
        self.status.clear()
        self.status.hide()  # the banner says it all, in the room the list leaves

    def _show(self, result: PooledModels) -> None:
        if self._stale or self._planned is None:  # a newer plan follows, or no workers now
            return
        self.banner.clear()
        self.status.show()
        self.result = result
        self.heading.setText(f"Fit only with your workers ({result.machines} machines)")
        self.list.clear()
        self.rows = []
        for model in result.models:
            row = PooledRow(model)
            row.button.clicked.connect(lambda _checked=False, r=row: self.download(r))
            item = QListWidgetItem()
            self.list.addItem(item)
            self.list.set_row_widget(item, row)
            self.rows.append(row)
        self.list.setVisible(bool(result.models))
        if result.models:
            self.status.setText(
                f"{len(result.models)} handbook models fit only across this computer and your "
                "workers. Speeds are estimates (hover for why)."
            )
        else:
            self.status.setText(
                "None of the handbook's models needs your workers: each one either fits this "
                "computer alone or does not fit even across the machines."
            )

    def download(self, row: PooledRow) -> None:
        """Queue the row's model in the app's download queue (as the handbook's rows do)."""
        from gbdesk.download.job import JobState
        from gbdesk.download.spec import resolve_spec

        option = row.model.option

        def finished(job: Any) -> None:
            if job.state is JobState.DONE:
                row.button.setText("Downloaded")
                self.banner.show_message(
                    f"Downloaded {option.model_name} {option.quant}: it is on the Models "
                    "page's Installed tab; serving it spreads it over your workers.",
                    level="success",
                )
                self.downloaded.emit(option.model_name)
                return
            row.show_download_ready()
            if job.state is JobState.FAILED and job.error is not None:
                self.banner.show_error(job.error)

        def refused(error: GbdeskError) -> None:
            self.banner.show_error(error)
            row.show_download_ready()

        row.button.setEnabled(False)
        row.button.setText("Queued")
        name = f"{option.model_id}:{option.quant}"
        queue_download(
            self,
            self.state.downloads,
            lambda: resolve_spec(name),
            on_progress=lambda p: row.button.setText(f"{round(100 * p.done / max(1, p.total))} %"),
            on_done=finished,
            on_refused=refused,
        )


def _same(a: tuple[str, Any, FitSettings], b: tuple[str, Any, FitSettings]) -> bool:
    return a[0] == b[0] and a[1] is b[1] and a[2] == b[2]
