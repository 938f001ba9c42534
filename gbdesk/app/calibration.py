"""Use case: measure this computer once, so the first speed figures a person sees rest on it.

Until `gbdesk bench` has run, every tokens/s figure is the speed model's guess. The app does
not wait for anyone to find that command: on its first start (and on any start while no
calibration for this CPU exists) it runs the quick bench in the background
(:func:`gbdesk.fit.bench.calibrate` with ``quick``: the starter and five synthetic models, two
runs each, about half a minute on two cores), and the recommendations that follow are
"calibrated". The GUI runs :func:`measure_this_computer` through ``ui.workers.run_task``;
``gbdesk bench --quick`` runs the same bench from the command line.

Only one bench runs on a machine at a time (:func:`gbdesk.fit.calibration.bench_lock`), and a
cancelled one (Quit) stores nothing: the calibration and measured-speed files are written, each
atomically, only once every model has been timed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gbdesk.errors import GbdeskError
from gbdesk.fit.bench import calibrate
from gbdesk.fit.calibration import Calibration, load_calibration
from gbdesk.fit.measure import QUICK_REPEATS
from gbdesk.hardware.profile import HardwareProfile
from gbdesk.starter import require_starter_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MeasureProgress:
    """How far the measurement is: runs done of all runs, and what it does now."""

    done: int
    total: int
    text: str

    @property
    def fraction(self) -> float:
        """0 to 1."""
        return self.done / self.total if self.total else 0.0


@dataclass(frozen=True)
class MeasureResult:
    """The stored calibration, where it is, and the starter model's measured speed."""

    calibration: Calibration
    path: Path

    @property
    def starter_tps(self) -> float:
        return self.calibration.measured_generation_tps

    def sentence(self) -> str:
        """The result in plain words, for the wizard and the CLI."""
        return (
            f"Measured: this computer generates about {self.starter_tps:.0f} tokens per second "
            "with the starter model. The speeds shown for other models are based on this."
        )


def calibration_needed(profile: HardwareProfile) -> bool:
    """Whether no calibration of this CPU is stored (none, another CPU's, or a damaged file,
    which the bench replaces)."""
    try:
        calibration = load_calibration()
    except GbdeskError as exc:
        log.warning("the calibration file will be measured again: %s", exc.message)
        return True
    return calibration is None or not calibration.matches(
        profile.cpu.brand, profile.cpu.physical_cores
    )


def measure_this_computer(
    *,
    cancel: threading.Event | None = None,
    progress: Callable[[MeasureProgress], None] = lambda _p: None,
    model: Path | None = None,
    repeats: int = QUICK_REPEATS,
) -> MeasureResult:
    """Run the quick bench with the starter model (or ``model``) and store the calibration and
    the model's measured speed. ``progress`` gets a :class:`MeasureProgress` as it goes;
    setting ``cancel`` stops it within a tenth of a second, and nothing is stored.

    Raises:
        BenchBusyError: another bench is measuring this computer.
        BenchCancelledError: ``cancel`` was set.
        GbdeskError: the starter model is missing, or llama.cpp could not run a model.
        GGUFError: ``model`` is not a valid GGUF.
        OSError: the data folder or the temporary bench models cannot be written.
    """
    path = model or require_starter_model()
    state = {"text": "Preparing the test models…"}
    progress(MeasureProgress(0, 1, state["text"]))

    def on_text(text: str) -> None:
        state["text"] = "Timing test models…" if text.startswith("timing") else state["text"]

    def on_progress(done: int, total: int) -> None:
        progress(MeasureProgress(done, total, state["text"]))

    calibration, where = calibrate(
        path, report=on_text, repeats=repeats, quick=True, cancel=cancel, progress=on_progress
    )
    return MeasureResult(calibration, where)
