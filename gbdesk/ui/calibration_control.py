"""The app's first-run measurement of this computer, run in the background (never on the GUI
thread), and a label that shows how it goes.

:class:`CalibrationRunner` runs :func:`gbdesk.app.calibration.measure_this_computer` through
``run_task`` when no calibration of this CPU exists; one :class:`AppState` holds one runner
(``state.calibration``), so the wizard's pages and the main window see the same run.
:class:`MeasuringLabel` says "Measuring this computer…" with the share done, then the result in
plain words. Quit cancels the task like any other; the bench then stores nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel, QWidget

from gbdesk.errors import GbdeskError
from gbdesk.ui.workers import TaskHandle, run_task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MeasureView:
    """What the runner is doing: phase is idle, running, done, failed or busy."""

    phase: str = "idle"
    fraction: float = 0.0
    text: str = ""


class CalibrationRunner(QObject):
    """Starts the measurement when needed, once at a time, and tells listeners."""

    changed = Signal(object)  # MeasureView
    finished = Signal(object)  # MeasureResult, once a calibration is stored

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.view = MeasureView()
        self.result: Any = None
        self._task: TaskHandle | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start_if_needed(self, profile: Any = None, *, repeats: int | None = None) -> bool:
        """Start the measurement unless one runs or this CPU's calibration is stored; whether
        it started. ``profile`` is the probe's (probed in the worker when None); ``repeats``
        the runs per model (the quick bench's default when None)."""
        if self._task is not None:
            return False

        def work(ctx: Any) -> Any:
            from gbdesk.app.calibration import calibration_needed, measure_this_computer
            from gbdesk.fit.measure import QUICK_REPEATS
            from gbdesk.hardware.probe import probe
            from gbdesk.starter import starter_model_path

            if starter_model_path() is None:  # nothing to time (a build without the starter)
                return None
            if not calibration_needed(profile or probe()):
                return None
            return measure_this_computer(
                cancel=ctx.cancel_event,
                progress=ctx.report,
                repeats=repeats or QUICK_REPEATS,
            )

        self._set(MeasureView("running", 0.0, "Measuring this computer…"))
        self._task = run_task(
            "measure this computer",
            work,
            on_done=self._on_done,
            on_failed=self._on_failed,
            on_progress=self._on_progress,
            on_cancelled=lambda: self._set(MeasureView()),
            on_finished=self._on_finished,
        )
        return True

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def _set(self, view: MeasureView) -> None:
        self.view = view
        self.changed.emit(view)

    def _on_progress(self, value: Any) -> None:
        self._set(MeasureView("running", value.fraction, value.text))

    def _on_done(self, result: Any) -> None:
        if result is None:  # a calibration of this CPU was already stored
            self._set(MeasureView())
            return
        self.result = result
        self._set(MeasureView("done", 1.0, result.sentence()))
        self.finished.emit(result)

    def _on_failed(self, error: GbdeskError) -> None:
        from gbdesk.fit.calibration import BenchBusyError

        if isinstance(error, BenchBusyError):  # another gbdesk measures: its result counts
            self._set(MeasureView("busy", 0.0, "Another gbdesk is measuring this computer."))
            return
        log.warning("measuring this computer failed: %s", error.message)
        self._set(
            MeasureView(
                "failed",
                0.0,
                "Could not measure this computer, so the speeds shown are estimates: "
                f"{error.message}. {error.fix or ''}".strip(),
            )
        )

    def _on_finished(self) -> None:
        self._task = None


class MeasuringLabel(QLabel):
    """One line that follows a :class:`CalibrationRunner`: hidden while it is idle."""

    def __init__(self, runner: CalibrationRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("MeasuringLabel")
        self.setWordWrap(True)
        runner.changed.connect(self.show_view)
        self.show_view(runner.view)

    def show_view(self, view: MeasureView) -> None:
        if view.phase == "running":
            share = f" {view.fraction:.0%} done." if view.fraction > 0 else ""
            self.setText(
                "<b>Measuring this computer…</b> A short test in the background times a few "
                f"small models, so the speeds in the next step fit this computer.{share}"
            )
        else:
            self.setText(view.text)
        self.setVisible(view.phase != "idle")
