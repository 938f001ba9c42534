"""Dashboard: the backend's state and figures, and live CPU, RAM and VRAM charts.

System samples are taken in a worker every second while the page is visible; the backend's
figures come from its /metrics endpoint through the backend controller.
"""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QVBoxLayout, QWidget

from gbdesk.ui.state import AppState
from gbdesk.ui.widgets import MARGIN, Card, LineChart, human_bytes, muted, page_header
from gbdesk.ui.workers import run_task

SAMPLE_MS = 1000


def _sample(_ctx: object) -> object:
    # Imported here: psutil and NVML are not needed before the first window is on screen.
    from gbdesk.ui.system_sampler import sample_system

    return sample_system()


class DashboardPage(QWidget):
    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Page")
        self.state = state
        layout = QVBoxLayout(self)
        layout.setContentsMargins(MARGIN, MARGIN, MARGIN, MARGIN)
        layout.setSpacing(14)
        layout.addWidget(page_header("Dashboard", "The bot backend and this computer, live."))

        self.top = QGridLayout()
        self.top.setSpacing(12)
        layout.addLayout(self.top)

        usage = Card("System use")
        self.chart = LineChart(capacity=60)
        self.chart.add_series("CPU", "series_cpu")
        self.chart.add_series("RAM", "series_ram")
        usage.body.addWidget(self.chart, 1)
        details = QHBoxLayout()
        self.ram_label = muted("", wrap=False)
        self.vram_label = muted("", wrap=False)
        details.addWidget(self.ram_label)
        details.addStretch(1)
        details.addWidget(self.vram_label)
        usage.body.addLayout(details)
        layout.addWidget(usage, 1)

        self._timer = QTimer(self)
        self._timer.setInterval(SAMPLE_MS)
        self._timer.timeout.connect(self.sample)
        self._sampling = False
        self.samples_taken = 0

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        # The first sample waits for the window to be painted: start-up comes first.
        QTimer.singleShot(100, self.sample)
        self._timer.start()

    def hideEvent(self, event) -> None:  # noqa: N802
        super().hideEvent(event)
        self._timer.stop()

    def sample(self) -> None:
        if self._sampling:
            return
        self._sampling = True
        run_task(
            "sample system use",
            _sample,
            on_done=self._on_sample,
            on_finished=self._on_sample_finished,
        )

    def _on_sample_finished(self) -> None:
        self._sampling = False

    def _on_sample(self, sample) -> None:  # sample: a SystemSample
        self.samples_taken += 1
        self.chart.append("CPU", sample.cpu_percent)
        self.chart.append("RAM", sample.ram_percent)
        self.ram_label.setText(
            f"RAM {human_bytes(sample.ram_used_bytes)} of {human_bytes(sample.ram_total_bytes)}"
        )
        if sample.vram_percent is not None:
            if not self.chart.has_series("VRAM"):
                self.chart.add_series("VRAM", "series_vram")
            self.chart.append("VRAM", sample.vram_percent)
            self.vram_label.setText(
                f"VRAM {human_bytes(sample.vram_used_bytes)} of "
                f"{human_bytes(sample.vram_total_bytes)}"
            )
        else:
            self.vram_label.setText("No NVIDIA GPU: no VRAM to chart")
