"""The Node page's "Lend this computer" card: start and stop `gbdesk worker` (llama.cpp's RPC
server), so that another computer's backend can put part of a model here.

The worker runs as a child process (:class:`gbdesk.backend.worker_process.WorkerProcess`),
started and stopped in a worker thread; it stops when the app quits.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QCoreApplication
from PySide6.QtWidgets import QCheckBox, QFormLayout, QHBoxLayout, QLabel, QPushButton, QWidget

from gbdesk.backend.worker import WorkerOptions
from gbdesk.backend.worker_process import WorkerProcess
from gbdesk.errors import GbdeskError
from gbdesk.hardware.address import advertised_host
from gbdesk.hardware.rpc import WorkerAddress
from gbdesk.ui.state import AppState
from gbdesk.ui.widgets import Banner, Card, muted, option_spin
from gbdesk.ui.workers import run_task

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
EVERYWHERE = "0.0.0.0"
EXPOSED_WORDS = (
    "Any computer that can reach this one on the network can then use it: llama.cpp's worker"
    " has no password. Turn this on only at home or in an office network you trust."
)


class WorkerPanel(Card):
    """Start/stop this computer's RPC worker, with its port, memory and who may connect."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__("Lend this computer to another", parent)
        self.state = state
        settings = state.settings
        intro = QLabel(
            "A model too big for one computer can run across several: start the worker here,"
            " then add this computer's address and port to Workers in the other computer's"
            " Settings."
        )
        intro.setWordWrap(True)
        self.body.addWidget(intro)
        form = QFormLayout()
        self.port_spin = option_spin("worker_port", settings.worker_port)
        self.memory_spin = option_spin("worker_memory_mib", settings.worker_memory_mib)
        self.memory_spin.setSuffix(" MiB")
        self.network_box = QCheckBox("Let other computers use this worker")
        self.network_box.setChecked(settings.worker_host != LOOPBACK)
        self.network_box.toggled.connect(self._show_exposure)
        form.addRow("Port", self.port_spin)
        form.addRow("Memory to offer", self.memory_spin)
        form.addRow("", self.network_box)
        self.body.addLayout(form)
        self.exposure = muted(EXPOSED_WORDS)
        self.exposure.setWordWrap(True)
        self.body.addWidget(self.exposure)
        self.banner = Banner()
        self.body.addWidget(self.banner)
        row = QHBoxLayout()
        self.status = muted("The worker is not running.")
        self.status.setWordWrap(True)
        self.button = QPushButton("Start the worker")
        self.button.clicked.connect(self.toggle)
        row.addWidget(self.status, 1)
        row.addWidget(self.button)
        self.body.addLayout(row)
        self.process: WorkerProcess | None = None
        self._busy = False
        self._show_exposure()
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.stop_now)

    def _options(self) -> WorkerOptions:
        return WorkerOptions(
            host=EVERYWHERE if self.network_box.isChecked() else LOOPBACK,
            port=self.port_spin.value(),
            memory_mib=self.memory_spin.value(),
        )

    def _show_exposure(self) -> None:
        self.exposure.setVisible(self.network_box.isChecked())

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running

    def toggle(self) -> None:
        """Start the worker, or stop it when it runs (in a worker thread)."""
        if self._busy:
            return
        self._busy = True
        self.button.setEnabled(False)
        self.banner.clear()
        running = self.process
        if running is not None and running.running:
            self.status.setText("Stopping the worker…")
            run_task(
                "stop the worker",
                lambda _ctx: running.stop(),
                on_done=lambda _result: self._show_stopped(),
                on_failed=self._on_failed,
                on_finished=self._on_finished,
            )
            return
        options = self._options()
        try:
            self.state.update_settings(
                worker_host=options.host,
                worker_port=options.port,
                worker_memory_mib=options.memory_mib,
            )
        except OSError as exc:  # the worker can run without the settings saved
            log.warning("could not save the worker settings: %s", exc)
        process = WorkerProcess(options, self.state.backend_log_path().with_name("worker.log"))
        self.process = process
        self.status.setText("Starting the worker…")
        run_task(
            "start the worker",
            lambda _ctx: process.start(),
            on_done=self._show_running,
            on_failed=self._on_failed,
            on_finished=self._on_finished,
        )

    def _show_running(self, address: WorkerAddress) -> None:
        offered = ", ".join(
            f"{memory.free / 2**30:.1f} GiB"
            for _name, memory in (self.process.devices if self.process else ())
        )
        reach = advertised_host(address.host)
        where = (
            f"other computers use it as {reach.host}:{address.port} (Settings > Workers there)"
            if reach.reachable
            else "only this computer can use it (turn on the box above to lend it)"
        )
        self.status.setText(
            f"The worker runs on port {address.port} and offers {offered}; {where}."
        )
        self.button.setText("Stop the worker")

    def _show_stopped(self) -> None:
        self.status.setText("The worker is not running.")
        self.button.setText("Start the worker")

    def _on_failed(self, error: GbdeskError) -> None:
        from gbdesk.backend.errors import PortInUseError

        if isinstance(error, PortInUseError):
            port = self.port_spin.value()
            free = error.details.get("suggested")
            example = f" (for example {free}, which is free now)" if free else ""
            self.banner.show_message(
                f"Port {port} is already in use by another program.",
                f"pick another port above{example}, or close the other program",
            )
        else:  # the core's fixes may name command-line flags, which mean nothing here
            fix = error.fix or ""
            if "--" in fix or "`" in fix:
                fix = "see the worker's log on the Logs page"
            self.banner.show_message(error.message, fix)
        self._show_stopped()

    def _on_finished(self) -> None:
        self._busy = False
        self.button.setEnabled(True)

    def stop_now(self) -> None:
        """Stop the worker at once (the app is quitting)."""
        if self.process is not None:
            self.process.stop(timeout_s=5)
