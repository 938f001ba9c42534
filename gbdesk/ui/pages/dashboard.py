"""Dashboard: the backend's state and figures, and live CPU, RAM and VRAM charts.

System samples are taken in a worker every second while the page is visible; the backend's
figures come from its /metrics endpoint through the backend controller.
"""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QPushButton, QWidget

from gbdesk.backend.supervisor import BackendState
from gbdesk.options import STARTER
from gbdesk.ui.backend_control import BackendView
from gbdesk.ui.backend_widgets import BackendStatusLabel
from gbdesk.ui.state import AppState
from gbdesk.ui.widgets import (
    Banner,
    Card,
    LineChart,
    StatTile,
    human_bytes,
    muted,
    primary_button,
    scrolling_page_layout,
)
from gbdesk.ui.workers import run_task

SAMPLE_MS = 1000


def _sample(backend_pid: int | None) -> object:
    # Imported here: psutil and NVML are not needed before the first window is on screen.
    from gbdesk.ui.system_sampler import sample_system

    return sample_system(backend_pid)


class DashboardPage(QWidget):
    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        layout = scrolling_page_layout(
            self, "Dashboard", "The bot backend and this computer, live.", spacing=14
        )

        backend_card = Card("Bot backend")
        row = QHBoxLayout()
        self.backend_status = BackendStatusLabel(state.backend)
        self.start_button = primary_button("Start")
        self.start_button.clicked.connect(self._start_backend)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.state.backend.stop)
        row.addWidget(self.backend_status, 1)
        row.addWidget(self.stop_button)
        row.addWidget(self.start_button)
        backend_card.body.addLayout(row)
        self.resume_note = muted("")  # "serving again, as before gbdesk was closed"
        self.resume_note.hide()
        backend_card.body.addWidget(self.resume_note)
        self.backend_banner = Banner()
        backend_card.body.addWidget(self.backend_banner)
        layout.addWidget(backend_card)

        self.top = QGridLayout()
        self.top.setSpacing(12)
        self.tokens_tile = StatTile("Generation speed")
        self.requests_tile = StatTile("Requests answered")
        self.queue_tile = StatTile("Queue (waiting / in progress)")
        for column, tile in enumerate((self.tokens_tile, self.requests_tile, self.queue_tile)):
            self.top.addWidget(tile, 0, column)
        layout.addLayout(self.top)
        self.metrics = None  # the last BackendMetrics read
        self._metrics_busy = False
        state.backend.state_changed.connect(self._on_backend)
        self._on_backend(state.backend.view)

        usage = Card("System use")
        self.chart = LineChart(capacity=60)
        self.chart.add_series("CPU (all programs)", "series_cpu")
        self.chart.add_series("CPU (the bot backend)", "series_backend")
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
        self._poll_metrics()
        if self._sampling:
            return
        self._sampling = True
        pid = self.state.backend.view.pid
        run_task(
            "sample system use",
            lambda _ctx: _sample(pid),
            on_done=self._on_sample,
            on_finished=self._on_sample_finished,
        )

    # --- the backend ---------------------------------------------------------------------

    def _start_backend(self) -> None:
        self.state.backend.start()

    def _on_backend(self, view: BackendView) -> None:
        self._show_resume_note(view)
        busy = view.phase.busy
        self.start_button.setEnabled(not view.running and not busy)
        self.stop_button.setEnabled(view.running and view.phase is not BackendState.STOPPING)
        if view.phase in {BackendState.FAILED, BackendState.CRASHED}:
            from gbdesk.ui.backend_control import PORT_TAKEN

            action = (
                ("Use another port", self.state.backend.use_another_port)
                if view.action == PORT_TAKEN
                else None
            )
            self.backend_banner.show_message(view.message, view.fix, action=action)
        else:
            self.backend_banner.clear()
        if view.phase is not BackendState.READY:
            for tile in (self.tokens_tile, self.requests_tile, self.queue_tile):
                tile.set_value("-")
        elif self.isVisible():
            self._poll_metrics()

    def _show_resume_note(self, view: BackendView) -> None:
        """Say that the app started the backend by itself at launch (resume_backend)."""
        from gbdesk.ui.backend_widgets import model_label

        resumed = self.state.resumed_model
        if not resumed or not view.running or view.model != resumed:
            self.resume_note.hide()
            return
        name = "the starter model" if resumed == STARTER else model_label(resumed)
        self.resume_note.setText(
            f"gbdesk serves {name} again, as before it was closed: botserver "
            "and the chats can use it. (Settings: Serve the model again when gbdesk opens.)"
        )
        self.resume_note.show()

    def _poll_metrics(self) -> None:
        """Read the backend's /metrics in a worker (only while it is ready)."""
        if self._metrics_busy or not self.state.backend.is_ready():
            return
        from gbdesk.app.metrics import fetch_metrics

        self._metrics_busy = True
        url = self.state.backend.view.url
        api_key = self.state.backend_api_key()
        run_task(
            "read the backend's figures",
            lambda _ctx: fetch_metrics(url, api_key),
            on_done=self._on_metrics,
            on_finished=lambda: setattr(self, "_metrics_busy", False),
        )

    def _on_metrics(self, metrics) -> None:  # metrics: a BackendMetrics
        if not self.state.backend.is_ready():
            return
        self.metrics = metrics
        self.tokens_tile.set_value(f"{metrics.tokens_per_second:.1f} tokens/s")
        self.requests_tile.set_value(f"{metrics.requests}")
        self.queue_tile.set_value(f"{metrics.queued} / {metrics.processing}")

    def _on_sample_finished(self) -> None:
        self._sampling = False

    def _on_sample(self, sample) -> None:  # sample: a SystemSample
        self.samples_taken += 1
        self.chart.append("CPU (all programs)", sample.cpu_percent)
        self.chart.append("CPU (the bot backend)", sample.backend_cpu_percent or 0.0)
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
